# frozen_string_literal: true

# Every seed response (test/fuzz/seeds) and every fuzz corpus entry that
# bin/fuzz has grown (build-fuzz/corpus) goes through Bytepump.fetch, on the
# splice path (into a pipe) and the copying path (into a StringIO), and
# through llhttp in its strict mode. The rule: bytepump never delivers a byte
# of body that llhttp would not deliver, and takes a body as complete only
# where llhttp completes the message with the same status, fields and bytes.
# bytepump may refuse more (duplicate Content-Length, Content-Length with
# Transfer-Encoding, unknown codings, folded framing fields), and reads heads
# leniently where RFC 9112 lets a recipient: those differences are checked
# against llhttp on the strictly rewritten head (Differential.strict_head).
RSpec.describe "bytepump against llhttp", :integration do
  root = File.expand_path("..", __dir__)
  inputs = Dir[File.join(root, "test/fuzz/seeds/*"), File.join(root, "build-fuzz/corpus/*/*")]
           .sort.map { |f| File.binread(f) }.uniq

  before(:context) do
    @inputs = inputs
    @server = Servers::Scripted.new { |path, conn, _| conn.write(@inputs.fetch(Integer(path[1..]))) }
  end

  after(:context) { @server&.stop }

  # What bytepump delivered into +kind+ for input +index+, and how it ended.
  def fetch_into(kind, index)
    if kind == :stringio
      dst = StringIO.new(+"".b)
      received = -> { dst.string }
    else
      peer, dst = IO.pipe
      reader = helper_thread { peer.read.b }
      received = lambda {
        dst.close
        reader.value
      }
    end
    result = Bytepump.fetch(@server.url("/#{index}"), into: dst, max_redirects: 0, timeout: 5)
    [result, received.call]
  rescue Bytepump::Error, SystemCallError => e
    [e, received.call]
  ensure
    peer&.close
  end

  # Folded lines may be joined with one space or several (RFC 9112 says
  # "one or more"): compare field values with runs of blanks as one.
  def fields(pairs) = pairs.map { |n, v| [n.b, v.b.gsub(/[ \t]+/, " ").strip] }

  it "never delivers a body llhttp would not, over every seed and corpus entry", deadline: 600 do
    counts = Hash.new(0)
    @inputs.each_with_index do |raw, index|
      theirs = Differential.llhttp(raw)
      %i[stringio pipe].each do |kind|
        ours, delivered = fetch_into(kind, index)
        where = "input #{index} into a #{kind}: #{raw[0, 200].inspect}"
        reference = theirs
        explained = theirs.body.start_with?(delivered) &&
                    (!ours.is_a?(Bytepump::FetchResult) || (theirs.complete && theirs.body == delivered))
        unless explained
          reference = Differential.llhttp(Differential.without_expected_differences(raw))
          counts[:expected_difference] += 1
        end
        expect(reference.body.start_with?(delivered)).to be(true), "#{where}: delivered #{delivered.inspect}, " \
                                                                   "llhttp #{reference.body.inspect}"
        if ours.is_a?(Bytepump::FetchResult)
          expect(reference.complete).to be(true), "#{where}: llhttp did not complete (#{reference.error})"
          expect([ours.response.status, delivered]).to eq([reference.status, reference.body]), where
          expect(fields(ours.response.headers.to_a)).to eq(fields(reference.headers)), where
          counts[:both_complete] += 1
        else
          counts[theirs.complete ? :refused_by_bytepump_only : :refused_by_both] += 1
        end
      end
    end
    puts "\nllhttp differential: #{@inputs.size} inputs, #{counts.sort.to_h}" if ENV["BYTEPUMP_PRINT_DIFFERENTIAL"]
  end
end
