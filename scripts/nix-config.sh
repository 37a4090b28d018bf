# shellcheck shell=bash
# Sourced by the scripts: Nix's offline single-user settings (the machine
# recipes'), for the sourcing script and what it runs only. They are never
# written to /etc/nix/nix.conf, where they would turn off the binary cache
# for the whole machine and claim aarch64 builds for everything.
#   substituters =                  no 5 s of retries against cache.nixos.org offline
#   sandbox = false                 the stand-in nixpkgs copies this machine's programs
#   build-users-group =             root builds without the nixbld users
#   extra-platforms = aarch64-linux the stand-in's arm64 packages build here
nixery_nix_config="experimental-features = nix-command flakes
sandbox = false
build-users-group =
substituters =
extra-platforms = aarch64-linux"
# Later lines win: a NIX_CONFIG set by the caller is kept under ours.
export NIX_CONFIG="${NIX_CONFIG:+$NIX_CONFIG
}$nixery_nix_config"
