# NixOS module: `nixery serve` as a system service, the same service as
# deploy/nixery-serve.service (a dynamic user, builds through the
# nix-daemon, images kept in /var/lib/nixery, secrets passed as systemd
# credentials so they never reach the Nix store). The flake exports it as
# nixosModules.default:
#
#   services.nixery.enable = true;
#   services.nixery.htpasswdFile = "/etc/nixery/htpasswd";
#
# Options left null take nixery's own defaults (`nixery serve --help`).
{ self }:
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.nixery;
  inherit (lib) mkOption types;

  # The flags each option gives; null and false give none. systemd reads
  # % and $ in ExecStart as specifiers and variables: a value's own are
  # doubled, so that it reaches nixery as written.
  literal = s: lib.replaceStrings [ "%" "$" ] [ "%%" "$$" ] (toString s);
  # LoadCredential= expands specifiers but no variables.
  path = s: lib.replaceStrings [ "%" ] [ "%%" ] s;
  flagWith = quote: name: value: lib.optionals (value != null && value != false) ([ "--${name}" ] ++ lib.optional (value != true) (quote value));
  flag = flagWith literal;
  # A value made of systemd specifiers, expanded by systemd.
  specifier = flagWith lib.id;

  args =
    [
      "serve"
    ]
    ++ flag "listen" cfg.listen
    ++ (if cfg.storage == null then specifier "storage" "%S/nixery" else flag "storage" cfg.storage)
    ++ flag "nixpkgs" cfg.nixpkgs
    ++ flag "platforms" (if cfg.platforms == null then null else lib.concatStringsSep "," cfg.platforms)
    ++ flag "builds" cfg.builds
    ++ flag "timeout" cfg.timeout
    ++ flag "max-images" cfg.maxImages
    ++ flag "max-storage" cfg.maxStorage
    ++ flag "max-connections" cfg.maxConnections
    ++ flag "nixpkgs-refresh" cfg.nixpkgsRefresh
    ++ specifier "htpasswd" (if cfg.htpasswdFile == null then null else "%d/htpasswd")
    ++ specifier "token-file" (if cfg.tokenFile == null then null else "%d/token")
    ++ flag "public-url" cfg.publicURL
    ++ flag "insecure" cfg.insecure
    ++ map literal cfg.extraArgs;

  # A path, not a Nix path value: a secret must not be copied to the store.
  secretFile = types.nullOr (types.strMatching "/.*");
in
{
  options.services.nixery = {
    enable = lib.mkEnableOption "nixery serve, a registry that builds images of Nix packages when they are pulled";

    package = mkOption {
      type = types.package;
      default = self.packages.${pkgs.stdenv.hostPlatform.system}.nixery;
      defaultText = lib.literalExpression "nixery-action.packages.\${system}.nixery";
      description = "The nixery package to run.";
    };

    listen = mkOption {
      type = types.str;
      default = "127.0.0.1:8080";
      description = "Address to listen on. Put a TLS proxy in front of it for other machines.";
    };

    storage = mkOption {
      type = types.nullOr (types.strMatching "docker://.+");
      default = null;
      example = "docker://registry.example.com/nixery";
      description = ''
        Where images are kept: null for the service's state directory
        (/var/lib/nixery), or docker://REGISTRY/NAME, a repository several
        servers share (logged in to with {option}`services.nixery.dockerConfigFile`).
        For more room, mount a larger disk at /var/lib/private/nixery,
        where systemd keeps a dynamic user's state.
      '';
    };

    nixpkgs = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "github:NixOS/nixpkgs/nixos-unstable";
      description = "Flake reference of the nixpkgs the tag latest builds from; null for the nixpkgs nixery was built with.";
    };

    platforms = mkOption {
      type = types.nullOr (types.nonEmptyListOf types.str);
      default = null;
      example = [ "linux/amd64" ];
      description = "Platforms of an image named without arm64; null for linux/amd64 and linux/arm64.";
    };

    builds = mkOption {
      type = types.nullOr types.ints.positive;
      default = null;
      description = "How many images build at once; null for nixery's default.";
    };

    timeout = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "30m";
      description = "How long one image's build may take (a Go duration); null for nixery's default.";
    };

    maxImages = mkOption {
      type = types.nullOr types.ints.unsigned;
      default = null;
      example = 200;
      description = "Keep at most this many images, dropping those pulled least recently; null or 0 keeps all.";
    };

    maxStorage = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "20G";
      description = "Keep the stored blobs within this size, dropping the images pulled least recently.";
    };

    maxConnections = mkOption {
      type = types.nullOr types.ints.unsigned;
      default = null;
      example = 4096;
      description = "Hold at most this many client connections open at once, the others waiting to be accepted; null (or 0) for no bound. An idle keep-alive connection counts for up to 2 minutes.";
    };

    nixpkgsRefresh = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "1h";
      description = "How often a tag's nixpkgs revision is locked again (a Go duration); null for nixery's default.";
    };

    htpasswdFile = mkOption {
      type = secretFile;
      default = null;
      example = "/etc/nixery/htpasswd";
      description = "An htpasswd file of bcrypt entries (htpasswd -B) that pulls must log in against; passed as a systemd credential, never copied to the Nix store.";
    };

    tokenFile = mkOption {
      type = secretFile;
      default = null;
      example = "/etc/nixery/token";
      description = "A file holding a token (16 characters or more) that pulls must present; passed as a systemd credential.";
    };

    publicURL = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "https://nixery.example.com";
      description = "With tokenFile, the URL clients reach the server at, so the challenge names its token endpoint.";
    };

    dockerConfigFile = mkOption {
      type = secretFile;
      default = null;
      example = "/etc/nixery/docker-config.json";
      description = "A docker config.json with the credentials of a docker:// storage; passed as a systemd credential.";
    };

    insecure = mkOption {
      type = types.bool;
      default = false;
      description = "Talk plain HTTP to a docker:// storage that is not on loopback.";
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "More arguments to `nixery serve`.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.htpasswdFile == null || cfg.tokenFile == null;
        message = "services.nixery: set htpasswdFile or tokenFile, not both";
      }
      {
        assertion = cfg.publicURL == null || cfg.tokenFile != null;
        message = "services.nixery: publicURL needs tokenFile";
      }
    ];

    systemd.services.nixery = {
      description = "nixery serve: container images of Nix packages, built on pull";
      documentation = [ "https://github.com/nixery-action/nixery-action#as-a-registry-nixery-serve" ];
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [
        "network-online.target"
        "nix-daemon.service"
      ];
      # git for a git+ nixpkgs reference, which Nix may fetch with it.
      path = [ config.nix.package ] ++ lib.optional (cfg.nixpkgs != null && lib.hasPrefix "git+" cfg.nixpkgs) pkgs.git;
      environment =
        {
          NIX_REMOTE = "daemon";
          # A dynamic user's home is not writable; Nix keeps its caches here.
          XDG_CACHE_HOME = "%C/nixery";
        }
        // lib.optionalAttrs (cfg.dockerConfigFile != null) {
          DOCKER_CONFIG = "%d";
        };
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/nixery ${lib.escapeShellArgs args}";
        LoadCredential =
          lib.optional (cfg.htpasswdFile != null) "htpasswd:${path cfg.htpasswdFile}"
          ++ lib.optional (cfg.tokenFile != null) "token:${path cfg.tokenFile}"
          ++ lib.optional (cfg.dockerConfigFile != null) "config.json:${path cfg.dockerConfigFile}";
        DynamicUser = true;
        StateDirectory = "nixery";
        CacheDirectory = "nixery";
        # SIGTERM cancels the builds and lets transfers in flight finish.
        KillSignal = "SIGTERM";
        TimeoutStopSec = 90;
        Restart = "on-failure";
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        ProtectKernelTunables = true;
        ProtectControlGroups = true;
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_UNIX"
        ];
        LockPersonality = true;
      };
    };
  };
}
