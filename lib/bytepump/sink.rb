# frozen_string_literal: true

module Bytepump
  # Writes bytes into a destination on the paths where they pass through
  # Ruby (sources or destinations that are not IOs, https bodies). An IO is
  # written without blocking and waited on with the downstream stall timeout;
  # any other object through its own #write, whose return value is trusted
  # only as a count: a short write is followed by the rest.
  class Sink
    # +waits+: the Native::Waits of the transfer this sink writes for.
    def initialize(dst, timeout, waits)
      @dst = dst
      @timeout = timeout
      @waits = waits
    end

    # Writes all of +data+, yielding each count the destination took. Returns
    # :done, or :timeout if an IO destination accepted nothing for the stall
    # timeout (what it took before that was yielded).
    def write(data)
      until data.empty?
        n = @dst.is_a?(IO) ? write_io(data) : write_object(data)
        return :timeout if n == :timeout

        yield n
        data = n == data.bytesize ? "" : data.byteslice(n..)
      end
      :done
    end

    private

    def write_io(data)
      loop do
        n = @dst.write_nonblock(data, exception: false)
        return n unless n == :wait_writable
        return :timeout unless @waits.wait(@dst, IO::WRITABLE, @timeout)
      end
    end

    # Objects whose #write returns something else (nil, self) wrote it all.
    def write_object(data)
      n = @dst.write(data)
      return data.bytesize unless n.is_a?(Integer)
      return n if n.positive? && n <= data.bytesize

      raise IOError, "#{@dst.class}#write returned #{n} for #{data.bytesize} bytes"
    end
  end
end
