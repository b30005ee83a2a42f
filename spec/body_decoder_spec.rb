# frozen_string_literal: true

# The native decoder the copying paths (https, ends that are not IOs) run on:
# framing, counts, CRC and errors come from C++, Ruby hands it bytes.
RSpec.describe Bytepump::Native::BodyDecoder do
  def drain(decoder, wire)
    body = +"".b
    buffer = wire.b.dup
    loop do
      kind, consumed = decoder.next(buffer)
      taken = buffer.slice!(0, consumed)
      body << taken if kind == :data
      return [kind, body, buffer] if %i[done error].include?(kind)
      return [decoder.finish, body, buffer] if kind == :need_more
    end
  end

  it "takes exactly a Content-Length body and leaves what follows" do
    decoder = described_class.new(:length, 5, 1024, 0)
    expect(decoder.want(64)).to eq(5)
    expect(drain(decoder, "helloNEXT")).to eq([:done, "hello", "NEXT"])
    expect(decoder.want(64)).to eq(0)
    decoder.wrote(5)
    result = decoder.result(:done, nil, 0)
    expect(result).to have_attributes(bytes_read: 5, bytes_written: 5, status: :done, strategy: :copy,
                                      crc32: Zlib.crc32("hello"), body_error: nil)
  end

  it "says a Content-Length body that ends early is truncated, with the bytes counted" do
    decoder = described_class.new(:length, 10, 1024, nil)
    expect(drain(decoder, "hello")).to eq([:error, "hello", ""])
    decoder.wrote(5)
    expect(decoder.error).to eq(:truncated)
    expect(decoder.result(:error, :upstream, 0))
      .to have_attributes(bytes_written: 5, body_error: :truncated, error_side: :upstream, crc32: nil)
  end

  it "decodes chunked bodies and names what broke their framing" do
    chunked = described_class.new(:chunked, nil, 1024, nil)
    expect(drain(chunked, "5\r\nhello\r\n0\r\n\r\nX")).to eq([:done, "hello", "X"])
    bare_lf = described_class.new(:chunked, nil, 1024, nil)
    expect(drain(bare_lf, "6\r\nworld\r\n9\r\n, spliced\r\n0\r\n\r\n").first).to eq(:error)
    expect(bare_lf.error).to eq(:malformed)
    expect(bare_lf.parse_error).to be_a(String).and(match(/CRLF|chunk/i))
    long = described_class.new(:chunked, nil, 8, nil)
    expect(drain(long, "5;aaaaaaaaaaaa=b\r\nhello\r\n0\r\n\r\n").first).to eq(:error)
    expect(long.error).to eq(:line_too_long)
  end

  it "copies until the end, at most a length, and a short input is no error" do
    capped = described_class.new(:close, 4, 0, nil)
    expect(drain(capped, "abcdefgh")).to eq([:done, "abcd", "efgh"])
    open_ended = described_class.new(:close, nil, 0, nil)
    expect(drain(open_ended, "abc")).to eq([:done, "abc", ""])
    expect(open_ended.error).to be_nil
  end

  it "refuses counts it never handed out, unknown framings and statuses" do
    decoder = described_class.new(:length, 3, 1024, nil)
    drain(decoder, "abc")
    expect { decoder.wrote(4) }.to raise_error(ArgumentError, /4 bytes written, but only 3 decoded/)
    expect { described_class.new(:gzip, nil, 1024, nil) }.to raise_error(ArgumentError, /unknown body framing :gzip/)
    expect { described_class.new(:length, nil, 1024, nil) }.to raise_error(ArgumentError, /needs its length/)
    expect { decoder.result(:finished, nil, 0) }.to raise_error(ArgumentError, /unknown status :finished/)
  end
end
