# frozen_string_literal: true

# A hard deadline for every example: a suite that can hang is a failing
# suite. Past the deadline a watchdog thread raises Deadline::Exceeded into
# the example's thread, with the backtrace of every thread and live fiber in
# the message, so the example fails with its name and where everything was
# stuck, and the suite goes on. If the example does not end within GRACE
# seconds after that (stuck where no exception can reach it), the process
# prints the same report and exits non-zero rather than hang.
#
# An example that needs longer says so and why: `deadline: 120`.
module Deadline
  DEFAULT = Float(ENV.fetch("BYTEPUMP_SPEC_DEADLINE", 60))
  GRACE = 15

  # Raised into an example that ran past its deadline.
  class Exceeded < Exception; end # rubocop:disable Lint/InheritException

  module_function

  def run(example, seconds)
    main = Thread.current
    state = { phase: :running }
    lock = Mutex.new
    before = Thread.list
    watchdog = Thread.new { watch(example, seconds, main, state, lock) }
    watchdog.report_on_exception = false
    # The deadline may land only inside example.run, where RSpec turns it
    # into this example's failure; never in this hook's own cleanup.
    Thread.handle_interrupt(Exceeded => :never) do
      Thread.handle_interrupt(Exceeded => :immediate) { example.run }
    ensure
      lock.synchronize { state[:phase] = :finished if state[:phase] == :running }
      watchdog.kill
      watchdog.join
      stop_leftovers(before) if state[:phase] == :fired
    end
  end

  def watch(example, seconds, main, state, lock)
    sleep seconds
    message = nil
    lock.synchronize do
      next unless state[:phase] == :running

      state[:phase] = :fired
      message = "deadline of #{seconds}s exceeded by \"#{example.full_description}\" " \
                "(#{example.location})\n#{report}"
      main.raise(Exceeded, message)
    end
    return unless message

    sleep GRACE
    warn "#{message}\nbytepump spec: the example did not stop #{GRACE}s after its deadline; " \
         "exiting.\nStill alive:\n#{report}"
    exit!(3)
  end

  def report
    threads = Thread.list.reject { |t| t == Thread.current }.map do |t|
      "  thread #{t.inspect}\n#{indent(t.backtrace)}"
    end
    fibers = ObjectSpace.each_object(Fiber).select(&:alive?).filter_map do |f|
      trace = f.backtrace
      "  fiber #{f.inspect}\n#{indent(trace)}" if trace && !trace.empty?
    end
    (["Threads:"] + threads + ["Fibers:"] + fibers).join("\n")
  end

  def indent(trace)
    (trace || ["(no backtrace)"]).first(40).map { |line| "      #{line}" }.join("\n")
  end

  # Threads the timed-out example started and left behind would otherwise
  # keep fds and peers busy for the examples that follow.
  def stop_leftovers(before)
    (Thread.list - before).each do |t|
      t.kill
      t.join(2)
    end
  end
end

RSpec.configure do |config|
  config.around do |example|
    Deadline.run(example, example.metadata.fetch(:deadline, Deadline::DEFAULT))
  end
end
