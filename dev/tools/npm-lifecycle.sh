#!/usr/bin/env bash
# npm's prepare and prepack hooks (package.json runs this script for both).
#
# prepare (npm ci, npm install): compiles everything, tests and benchmarks included, into dist/.
# prepack (npm pack, npm publish): replaces dist/ with the production build of
#   tsconfig.build.json (no tests, no benchmarks, no source maps): the tarball ships compiled
#   JavaScript, so installing it builds nothing. npm runs prepare right after prepack, so prepare
#   does nothing then; run `npm run build` afterwards to get the tests back.
set -euo pipefail
cd "$(dirname "$0")/../.."

case "${npm_lifecycle_event:-}" in
  prepare)
    case "${npm_command:-}" in pack | publish) exit 0 ;; esac
    exec tsc -p tsconfig.json
    ;;
  prepack)
    rm -rf dist
    tsc -p tsconfig.build.json
    find dist -name '*.map' -delete
    ;;
  *)
    echo "npm-lifecycle: run by npm as prepare or prepack, not ${npm_lifecycle_event:-by hand}" >&2
    exit 2
    ;;
esac
