# The stand-in package set for one system. Every package is a
# builtins.derivation run by this machine's /bin/sh (sandbox = false), with
# store-path references to the packages it links to or runs.
{ system }:
let
  # Nix gives builders PATH=/path-not-set; these builders use the host's
  # tools (cp, patchelf, perl) to assemble their outputs.
  hostPath = "/usr/bin:/bin:/usr/sbin:/sbin";

  package = name: script:
    builtins.derivation {
      inherit name system;
      builder = "/bin/sh";
      args = [ "-eu" "-c" ''
        mkdir -p $out/nix-support
        echo ${system} > $out/nix-support/system
        ${script}
      '' ];
      PATH = hostPath;
    };

  # relink copies a dynamically linked host program or library to $2 and
  # points its interpreter (programs only) and library path at store paths.
  relink = ''
    relink() {
      cp -L "$1" "$2"
      chmod u+w "$2"
      if [ -n "$4" ]; then
        patchelf --set-interpreter "${glibc}/lib/$(basename "$(patchelf --print-interpreter /usr/bin/hello)")" "$2"
      fi
      patchelf --set-rpath "$3" "$2"
    }
  '';

  # The C library and dynamic loader of the host, found through hello.
  glibc = package "glibc" ''
    mkdir -p $out/lib
    interp=$(patchelf --print-interpreter /usr/bin/hello)
    libc=$(ldd /usr/bin/hello | awk '$1 == "libc.so.6" { print $3 }')
    libdir=$(dirname "$libc")
    cp -L "$interp" $out/lib/
    for lib in libc.so.6 libm.so.6; do
      cp -L "$libdir/$lib" $out/lib/
    done
  '';

  hello = package "hello" ''
    ${relink}
    mkdir -p $out/bin
    relink /usr/bin/hello $out/bin/hello ${glibc}/lib program
  '';

  # jq and its two libraries (libjq, libonig), which it finds in its own
  # lib directory.
  jq = package "jq" ''
    ${relink}
    mkdir -p $out/bin $out/lib
    for lib in libjq.so.1 libonig.so.5; do
      relink "$(ldd /usr/bin/jq | awk -v l="$lib" '$1 == l { print $3 }')" $out/lib/$lib $out/lib:${glibc}/lib ""
    done
    relink /usr/bin/jq $out/bin/jq $out/lib:${glibc}/lib program
  '';

  # Statically linked: no references.
  busybox = package "busybox" ''
    mkdir -p $out/bin
    cp -L /bin/busybox $out/bin/busybox
  '';

  # bash's terminal library, in a store path of its own.
  ncurses = package "ncurses" ''
    ${relink}
    mkdir -p $out/lib
    libtinfo=$(ldd /bin/bash | awk '$1 == "libtinfo.so.6" { print $3 }')
    relink "$libtinfo" $out/lib/libtinfo.so.6 ${glibc}/lib ""
  '';

  bashInteractive = package "bash-interactive" ''
    ${relink}
    mkdir -p $out/bin
    relink /bin/bash $out/bin/bash ${ncurses}/lib:${glibc}/lib program
    ln -s bash $out/bin/sh
  '';

  # The usual tools as busybox applets.
  coreutils = package "coreutils" ''
    mkdir -p $out/bin
    for tool in basename cat chmod chown cp cut date dd df dirname du echo env \
        false head id ln ls mkdir mktemp mv nproc printf pwd readlink realpath \
        rm rmdir seq sleep sort stat tail tee test touch tr true uname uniq wc \
        whoami yes; do
      ln -s ${busybox}/bin/busybox $out/bin/$tool
    done
  '';

  moreutils = package "moreutils" ''
    mkdir -p $out/bin
    cat > $out/bin/sponge <<'SCRIPT'
    #!${bashInteractive}/bin/bash
    # sponge FILE: soak up standard input, then write it to FILE (or stdout).
    data=$(cat; echo x)
    data=''${data%x}
    if [ $# -gt 0 ]; then printf %s "$data" > "$1"; else printf %s "$data"; fi
    SCRIPT
    chmod +x $out/bin/sponge
  '';

  nano = package "nano" ''
    mkdir -p $out/bin
    cat > $out/bin/nano <<'SCRIPT'
    #!${bashInteractive}/bin/bash
    echo "nano (stand-in): no editor here; files named: $*"
    SCRIPT
    chmod +x $out/bin/nano
  '';

  # A small PEM used when the host has no certificate bundle.
  fallbackCert = ''
    -----BEGIN CERTIFICATE-----
    MIIBkTCCATegAwIBAgIUMWj8lEI4FHh/QZirSlre3VkNbCEwCgYIKoZIzj0EAwIw
    HTEbMBkGA1UEAwwSbml4ZXJ5IHN0YW5kLWluIENBMCAXDTI2MTEyMjIyNDI1OFoY
    DzIxMjYxMDI5MjI0MjU4WjAdMRswGQYDVQQDDBJuaXhlcnkgc3RhbmQtaW4gQ0Ew
    WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQVya++I1+MDSRaDqPbnWmtlFDrVmbo
    PN0XNZK14IIQpHogTHN31B2xyZoKE9JOnMNcBPs0C391So17XqtHZNUjo1MwUTAd
    BgNVHQ4EFgQUQmMBMJAQJtzqpRQWGvon3/i3eXYwHwYDVR0jBBgwFoAUQmMBMJAQ
    JtzqpRQWGvon3/i3eXYwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBF
    AiEAg54nAyxRDAdNh8UhmWKCassZsfU1JVlxRCaVuzwl/lACIHvclR3K/ns2fmyt
    jfMF4QFYO/vnoD+dHMyxq6e8FEpO
    -----END CERTIFICATE-----
  '';

  cacert = package "cacert" ''
    mkdir -p $out/etc/ssl/certs
    if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
      cp -L /etc/ssl/certs/ca-certificates.crt $out/etc/ssl/certs/ca-bundle.crt
    else
      printf '%s' '${fallbackCert}' > $out/etc/ssl/certs/ca-bundle.crt
    fi
    ln -s ca-bundle.crt $out/etc/ssl/certs/ca-certificates.crt
  '';

  iana-etc = package "iana-etc" ''
    mkdir -p $out/etc
    for f in protocols services; do
      if [ -r /etc/$f ]; then
        cp -L /etc/$f $out/etc/$f
      fi
    done
    [ -s $out/etc/protocols ] || printf 'ip\t0\tIP\ntcp\t6\tTCP\nudp\t17\tUDP\n' > $out/etc/protocols
    [ -s $out/etc/services ] || printf 'http\t80/tcp\nhttps\t443/tcp\n' > $out/etc/services
  '';

  # A package under a nested attribute set, named by a dotted path.
  python3Packages = {
    requests = package "python3-requests" ''
      dir=$out/lib/python3/site-packages/requests
      mkdir -p $dir
      echo '__version__ = "0+stand-in"' > $dir/__init__.py
      echo 'CA_BUNDLE = "${cacert}/etc/ssl/certs/ca-bundle.crt"' > $dir/certs.py
    '';
  };

  # 4 MiB of incompressible bytes, the same on every machine (xorshift32
  # from a fixed seed), so that layers are not trivially small.
  largefile = package "largefile" ''
    mkdir -p $out/share/largefile
    perl -e '
      my $x = 2463534242; my $buf = "";
      for (1 .. 1048576) {
        $x ^= ($x << 13) & 0xffffffff; $x ^= $x >> 17; $x ^= ($x << 5) & 0xffffffff;
        $buf .= pack("N", $x);
      }
      print $buf;
    ' > $out/share/largefile/data.bin
  '';
  # Two outputs, and meta.outputsToInstall naming both, as nixpkgs'
  # packages with man pages have: nix build of the package builds bin
  # alone on Nix 2.8 but bin and man from Nix 2.9; nixery takes bin, the
  # default output (outputName), on every Nix.
  withman = (builtins.derivation {
    name = "withman";
    inherit system;
    builder = "/bin/sh";
    outputs = [ "bin" "man" ];
    args = [ "-eu" "-c" ''
      mkdir -p $bin/bin $bin/nix-support $man/share/man/man1
      echo ${system} > $bin/nix-support/system
      printf '#!/bin/sh\necho "$@"\n' > $bin/bin/withman
      chmod +x $bin/bin/withman
      echo '.TH WITHMAN 1' > $man/share/man/man1/withman.1
    '' ];
    PATH = hostPath;
  }) // { meta.outputsToInstall = [ "bin" "man" ]; };
  # pname and version set apart, as nixpkgs' mkDerivation sets them (this
  # is xorg.fontadobe100dpi's): the name alone splits after "font-adobe",
  # at the first dash before a digit.
  fontadobe100dpi = builtins.derivation {
    pname = "font-adobe-100dpi";
    version = "1.0.4";
    name = "font-adobe-100dpi-1.0.4";
    inherit system;
    builder = "/bin/sh";
    args = [ "-eu" "-c" ''
      mkdir -p $out/nix-support $out/share/fonts/X11/100dpi
      echo ${system} > $out/nix-support/system
      echo 'STARTFONT 2.1' > $out/share/fonts/X11/100dpi/stand-in.bdf
    '' ];
    PATH = hostPath;
  };
  # A large tree for benchmarks (never built by the tests): this machine's
  # Go toolchain, about 270 MB.
  gotree = package "gotree" ''
    cp -r /usr/local/go $out/go
  '';
  # A build that does not end by itself, for the tests that stop builds.
  slow = package "slow" ''
    sleep 3600
  '';
in
{
  inherit gotree;
  inherit withman;
  inherit fontadobe100dpi;
  inherit slow;
  inherit glibc hello jq busybox ncurses bashInteractive coreutils moreutils nano
    cacert iana-etc python3Packages largefile;
}
