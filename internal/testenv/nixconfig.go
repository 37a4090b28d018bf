package testenv

// NixConfig is Nix's offline single-user configuration (the machine
// recipes'): tests put it in NIX_CONFIG themselves, so they depend neither
// on /etc/nix/nix.conf nor on the network. scripts/nix-config.sh holds the
// same settings for the scripts; TestNixConfigMatchesScript keeps the two
// equal.
const NixConfig = "experimental-features = nix-command flakes\n" +
	"sandbox = false\n" +
	"build-users-group =\n" +
	"substituters =\n" +
	"extra-platforms = aarch64-linux\n"
