# frozen_string_literal: true

require_relative "lib/bytepump/version"

Gem::Specification.new do |spec|
  spec.name = "bytepump"
  spec.version = Bytepump::VERSION
  spec.summary = "Zero-copy splice(2) between Ruby IOs, with stall timeouts and progress callbacks"
  spec.description = <<~DESC
    bytepump moves bytes between file descriptors with Linux splice(2) through a kernel pipe,
    so the data never enters Ruby. IO#splice_to works like IO.copy_stream but is nonblocking,
    has per-direction stall timeouts and reports progress to a block. The core is a C++17
    library that also builds standalone with CMake.
  DESC
  spec.license = "MIT"
  spec.authors = ["bytepump developers"]
  spec.homepage = "https://github.com/bytepump/bytepump"
  spec.required_ruby_version = ">= 3.1"
  spec.platform = Gem::Platform::RUBY

  spec.files = Dir[
    "README.md", "CHANGELOG.md", "LICENSE", "CMakeLists.txt", "cmake/*",
    "lib/**/*.rb", "ext/**/*.{rb,c,cpp,h,hpp}", "cpp/**/*.{cpp,hpp}", "sig/**/*.rbs", "sig/manifest.yaml", "exe/*"
  ]
  spec.bindir = "exe"
  spec.executables = ["bytepump"]
  spec.add_dependency "ruby-progressbar", "~> 1.13" # the CLI's progress bar
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/bytepump/extconf.rb"]
  spec.metadata["rubygems_mfa_required"] = "true"
  spec.metadata["source_code_uri"] = spec.homepage
  spec.metadata["changelog_uri"] = "#{spec.homepage}/blob/main/CHANGELOG.md"
  spec.metadata["bug_tracker_uri"] = "#{spec.homepage}/issues"
  spec.metadata["documentation_uri"] = "#{spec.homepage}#readme"
end
