# frozen_string_literal: true

module Bytepump
  # Frames over one IO, evloop's Pipe format:
  #   channel (2 bytes, big-endian) | length (4 bytes, big-endian) | payload
  # for a process that multiplexes channels over one socketpair. Payloads are
  # spliced: from an IO into the stream on #write, from the stream into the
  # IO a frame's channel routes to on #read; headers are read exactly, never
  # a byte past. Framing, counts and messages are the C++ core's
  # (bytepump/frames.hpp).
  #
  #   frames = Bytepump::Frames.new(socket, timeout: 30)
  #   frames.write(3, "hello")                      # a String payload
  #   frames.write(7, file, length: 1 << 20)        # 1 MiB spliced from file
  #   frames.read(3 => log, 7 => out)               # => [7, 1048576], nil at EOF
  #   frames.read { |channel, length| sinks[channel] } # nil discards a payload
  class Frames
    # The largest valid frame length (the format's limit).
    MAX_LENGTH = 64 << 20

    attr_reader :io

    # +timeout+: the stall timeout in seconds for each side of each frame.
    # nil: each IO's own IO#timeout (Ruby 3.2+; none when unset), which
    # raises IO::TimeoutError when it runs out; Float::INFINITY: none.
    def initialize(io, timeout: nil)
      raise TypeError, "Frames needs an IO (got #{io.class})" unless io.is_a?(IO)

      @io = io
      Native.check_timeout(:timeout, timeout)
      @timeout = timeout # as given: the binding takes each IO's own for nil
      @reader = Native::FrameReader.new
      @read_lock = Mutex.new # one C++ reader: one read at a time, a whole frame each
      @write_lock = Mutex.new
      @write_broken = nil
    end

    # Writes one frame on +channel+ (0..65535): a String payload, or +length+
    # bytes spliced from an IO (a File's default is what is left of it).
    # Returns the bytes written, header included. Frames from several threads
    # never interleave. Raises ArgumentError for a length of 0 or over
    # MAX_LENGTH, TruncatedFrame if the IO ends first, UpstreamTimeout /
    # DownstreamTimeout past the timeout, Errno::* for a failing syscall;
    # after any of these but ArgumentError the stream holds a partial frame
    # and further writes raise IOError.
    def write(channel, payload, length: nil)
      Native.check_count(:length, length)
      length ||= file_left(payload) unless payload.is_a?(String)
      if length.nil? && !payload.is_a?(String)
        raise ArgumentError, "Frames#write: length: is needed for a #{payload.class} payload"
      end

      @write_lock.synchronize do
        raise IOError, "Frames#write: the frame stream is broken: #{@write_broken}" if @write_broken

        status, written, message, errno = Native::FrameWriter.write(@io, channel, payload, length, @timeout)
        return written if status == :frame

        @write_broken = message unless written.zero?
        raise write_error(status, written, message, errno, channel, payload)
      end
    end

    # Reads one frame and splices its payload into the IO its channel routes
    # to: routes[channel] (a Hash), else the block's answer for (channel,
    # length); nil discards the payload. Returns [channel, length], or nil
    # at the end of the stream between frames. Raises InvalidFrame (naming
    # the channel and length; the next read goes on), TruncatedFrame,
    # UpstreamTimeout when no frame came in time (the next read goes on), and
    # after a stall or an exception inside a frame, IOError on later reads.
    # Reads from several threads take turns, a whole frame each.
    def read(routes = nil, &block)
      route = routes ? ->(channel, _length) { routes[channel] } : block
      route ||= ->(_channel, _length) {}
      status, channel, length, written, message = @read_lock.synchronize { @reader.read(@io, @timeout, &route) }
      case status
      when :frame then [channel, length]
      when :eof then nil
      else raise read_error(status, channel, length, written, message)
      end
    end

    # The sides of the timeout statuses: a Result's, and a stall inside a frame.
    TIMEOUT_SIDES = Result::TIMEOUT_SIDES.merge(broken_upstream: :upstream, broken_downstream: :downstream).freeze
    private_constant :TIMEOUT_SIDES

    private

    # The IO::TimeoutError of a side that outlasted its IO's own IO#timeout
    # (the Frames was given none; +ends+ the upstream and downstream IO);
    # nil for any other status or with a timeout given.
    def io_timeout(where, status, written, ends)
      side = TIMEOUT_SIDES[status]
      return unless side && @timeout.nil?

      IOTimeout.build(where, ends[side == :upstream ? 0 : 1], side: side, bytes_written: written)
    end

    def file_left(payload)
      payload.size - payload.pos if payload.is_a?(File) && File.file?(payload)
    end

    def read_error(status, channel, length, written, message)
      error = io_timeout("Frames#read (channel #{channel})", status, written, [@io, nil])
      return error if error

      case status
      when :invalid_length then InvalidFrame.new(message, channel: channel, length: length)
      when :truncated then TruncatedFrame.new(message, bytes_written: written)
      when :timeout_upstream
        UpstreamTimeout.new("Frames#read: no frame within #{@timeout}s", bytes_written: 0)
      when :broken_upstream, :broken_downstream
        klass = status == :broken_upstream ? UpstreamTimeout : DownstreamTimeout
        klass.new("Frames#read: stalled for #{@timeout}s inside the frame (channel #{channel}, length " \
                  "#{length}) after #{written} payload bytes; the frame stream is broken", bytes_written: written)
      else IOError.new("Frames#read: #{message}")
      end
    end

    def write_error(status, written, message, errno, channel, payload) # rubocop:disable Metrics/ParameterLists
      error = io_timeout("Frames#write (channel #{channel})", status, written, [payload, @io])
      return error if error

      case status
      when :truncated then TruncatedFrame.new("Frames#write: #{message}", bytes_written: written)
      when :timeout_upstream, :timeout_downstream
        klass = status == :timeout_upstream ? UpstreamTimeout : DownstreamTimeout
        side = status == :timeout_upstream ? "the payload IO sent" : "the frames IO took"
        klass.new("Frames#write: #{side} nothing for #{@timeout}s (channel #{channel}, #{written} bytes written)",
                  bytes_written: written)
      else
        SystemCallError.new("Frames#write: #{message}", errno)
      end
    end
  end
end
