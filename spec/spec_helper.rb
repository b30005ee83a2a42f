# frozen_string_literal: true

require "bytepump"
require "io/nonblock"
require "socket"
require "tempfile"
require "stringio"
require "digest"
require "timeout"
require "tmpdir"
require "fileutils"

Dir[File.join(__dir__, "support", "*.rb")].each { |f| require f }

# RSpec autoloads its matchers on first use. Fibers that hit one autoload at
# once under a Fiber scheduler deadlock on Ruby 3.1, so load them all now.
RSpec::Matchers::BuiltIn.constants.each { |name| RSpec::Matchers::BuiltIn.const_get(name) }

RSpec.configure do |config|
  config.disable_monkey_patching!
  config.expect_with(:rspec) { |c| c.syntax = :expect }
  config.include Endpoints
  config.filter_run_excluding(:slow) if ENV["BYTEPUMP_SKIP_SLOW"]
end
