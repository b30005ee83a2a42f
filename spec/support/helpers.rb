# frozen_string_literal: true

# Threads and processes an example starts, stopped after it whatever happened.
module Helpers
  # A helper thread for one example. It reports nothing on its own (its
  # failure surfaces through #value or #join) and is stopped after the
  # example whatever happened, never only on success.
  def helper_thread(...)
    thread = Thread.new(...)
    thread.report_on_exception = false
    (@threads ||= []) << thread
    thread
  end

  # Peers end once our sides are closed; one that does not is killed.
  def join_peers
    (@threads || []).each do |t|
      t.kill unless t.join(5)
      t.join
    rescue Exception # rubocop:disable Lint/RescueException
      nil
    end
  end

  # Registrations in +pid+'s epoll sets whose fd is closed, or now names
  # another file, as [fd, inode]: io-event can never remove those, and its
  # loop spins on one while the file is still open through another fd.
  def stale_epoll_registrations(pid = Process.pid)
    Dir["/proc/#{pid}/fdinfo/*"].flat_map do |info|
      registrations = File.read(info).scan(/^tfd:\s+(\d+)\s.*\sino:([0-9a-f]+)/)
      registrations.map { |fd, inode| [fd.to_i, inode.to_i(16)] }.reject do |fd, inode|
        File.stat("/proc/#{pid}/fd/#{fd}").ino == inode
      rescue Errno::ENOENT
        false
      end
    rescue Errno::ENOENT
      []
    end
  end

  # Ends a forked child that may still run (a failed example) and reaps it.
  def stop_child(pid, *ios)
    ios.each(&:close)
    return if Process.waitpid(pid, Process::WNOHANG)

    Process.kill(:KILL, pid)
    Process.wait(pid)
  rescue Errno::ESRCH, Errno::ECHILD
    nil
  end
end

RSpec.configure do |config|
  config.include Helpers
end
