package nix

import "strings"

// Nix gets an allow-list of this process's environment, not all of it: in
// a GitHub action the environment holds the registry password
// (INPUT_PASSWORD, NIXERY_PASSWORD), GITHUB_TOKEN, the runner's
// ACTIONS_* tokens and whatever secrets the workflow exports, and Nix
// hands its environment on to hooks (post-build-hook, pre-build-hook) and
// to ssh for remote builders. A deny-list would miss the secrets nobody
// thought of; what Nix itself reads is short and documented.
var (
	// nixEnvNames pass as they are.
	nixEnvNames = map[string]bool{
		"HOME": true, "USER": true, "LOGNAME": true, "PATH": true, "SHELL": true,
		"TMPDIR": true, "TMP": true, "TEMP": true,
		"LANG": true, "LANGUAGE": true, "TZ": true, "LOCALE_ARCHIVE": true,
		// Certificates for substituters and fetchers (libcurl, git).
		"SSL_CERT_FILE": true, "SSL_CERT_DIR": true, "CURL_CA_BUNDLE": true,
		// git+ssh inputs and ssh:// stores and remote builders.
		"SSH_AUTH_SOCK": true,
		// Proxies, in both the spellings curl reads.
		"http_proxy": true, "https_proxy": true, "ftp_proxy": true, "all_proxy": true, "no_proxy": true,
		"HTTP_PROXY": true, "HTTPS_PROXY": true, "FTP_PROXY": true, "ALL_PROXY": true, "NO_PROXY": true,
	}
	// nixEnvPrefixes pass every variable they start.
	nixEnvPrefixes = []string{
		"NIX_",  // NIX_CONFIG, NIX_USER_CONF_FILES, NIX_REMOTE, NIX_PATH, NIX_SSL_CERT_FILE, ...
		"_NIX_", // Nix's own internal switches
		"XDG_",  // where nix.conf, the caches and the registry live
		"LC_",   // locale
		"GIT_",  // git inputs: GIT_SSH_COMMAND, GIT_CONFIG_*, GIT_SSL_CAINFO
		"AWS_",  // s3:// substituters read the AWS SDK's settings and credentials
	}
)

// nixEnv returns the variables of env that Nix needs (the allow-list
// above), in their order, then NO_COLOR=1: Lix colours its messages when
// FORCE_COLOR or CLICOLOR_FORCE is set, and the messages are matched and
// quoted here.
func nixEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || name == "NO_COLOR" {
			continue
		}
		if nixEnvNames[name] || hasAnyPrefix(name, nixEnvPrefixes) {
			out = append(out, kv)
		}
	}
	return append(out, "NO_COLOR=1")
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
