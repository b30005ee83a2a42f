# frozen_string_literal: true

module Bytepump
  VERSION = "0.1.0"
end
