#!/usr/bin/env bash
# The main job of the README: install xdeploy_nb[train] and run `xdeploy demo` on generated sample data.
source "$(dirname "$0")/env.sh" train
xdeploy demo "$@"
