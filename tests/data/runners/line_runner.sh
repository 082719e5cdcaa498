#!/bin/sh
# A runner for the tests of the runner ops: one answer per request line.
#   release -> {"release": "<uname -r>"}   garbage -> a line that is not JSON   exit N -> a note on stderr, status N
#   hang -> never answers   anything else -> {"echo": "<line>"}
while IFS= read -r line; do
  case "$line" in
    release) printf '{"release": "%s"}\n' "$(uname -r)" ;;
    garbage) printf 'this is not JSON \001\n' ;;
    exit\ *) echo "line_runner: asked to exit with ${line#exit }" >&2; exit "${line#exit }" ;;
    hang) exec sleep 3600 ;;
    *) printf '{"echo": "%s"}\n' "$line" ;;
  esac
done
