# frozen_string_literal: true

require "open3"
require "rbconfig"

# Issue 16 item 10: no C++ object of the binding outlives a call that raised.
# A child Ruby runs with LeakSanitizer preloaded (it sees every malloc and
# new) through calls that raise mid-drive; a leak whose allocation stack
# passes through the extension (a std::vector or std::string of ours left
# behind by a longjmp) fails. Ruby's own allocations at exit are not ours.
RSpec.describe "leaks across raising calls", :slow, deadline: 300 do
  liblsan = `gcc -print-file-name=liblsan.so 2>/dev/null`.strip

  script = <<~RUBY
    require "bytepump"
    require "socket"
    # A tee whose progress block raises after a GVL-free wait.
    20.times do
      r, w = IO.pipe
      d, peer = UNIXSocket.pair
      Thread.new { sleep 0.02; w.write("x") }
      other = Thread.new { sleep 1 } # not alone: the GVL-free wait
      begin
        Bytepump.tee(r, [d]) { raise "boom" }
      rescue RuntimeError
      end
      other.kill
      [r, w, d, peer].each(&:close)
    end
    # Frame writes and reads, and transfers, ended by Thread#raise mid-wait.
    calls = [
      ->(r, a) { Bytepump::Frames.new(a, timeout: Float::INFINITY).write(1, r, length: 100) },
      ->(r, a) { Bytepump::Frames.new(r, timeout: Float::INFINITY).read { a } },
      ->(r, a) { r.splice_to(a) },
      ->(r, a) { Bytepump.tee(r, [a]) }
    ]
    calls.each do |call|
      10.times do
        r, w = IO.pipe
        a, b = UNIXSocket.pair
        t = Thread.new do
          call.call(r, a)
        rescue Interrupt
          nil
        end
        sleep 0.05
        t.raise(Interrupt)
        t.join
        [r, w, a, b].each(&:close)
      end
    end
    puts "ran"
  RUBY

  it "leaves no allocation of the extension behind" do
    skip "no liblsan.so (gcc's LeakSanitizer runtime)" unless File.exist?(liblsan)

    lib = File.expand_path("../lib", __dir__)
    env = { "LD_PRELOAD" => liblsan, "LSAN_OPTIONS" => "exitcode=0:fast_unwind_on_malloc=0:malloc_context_size=12" }
    out, err, status = Open3.capture3(env, RbConfig.ruby, "-I#{lib}", "-e", script)
    if err.include?("LeakSanitizer has encountered")
      skip "LeakSanitizer cannot run here: #{err[/LeakSanitizer has encountered.*/]}"
    end
    expect([status.success?, out]).to eq([true, "ran\n"]), err[-2000..]
    ours = err.split(/^(?=(?:Direct|Indirect) leak)/).select do |report|
      report.match?(/operator new|std::/) && report.include?("ext/bytepump/")
    end
    expect(ours).to eq([])
  end
end
