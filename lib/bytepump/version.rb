# frozen_string_literal: true

module Bytepump
  # The gem's version; the C++ library's CMake version is read from here.
  VERSION = "0.1.0"
end
