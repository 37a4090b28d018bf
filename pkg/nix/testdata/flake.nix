{
  outputs = { self }:
    let
      drv = name: system: script: extra: builtins.derivation ({
        inherit name system;
        builder = "/bin/sh";
        args = [ "-c" script ];
      } // extra);
      x86 = name: script: drv name "x86_64-linux" script { };
      # A chain four deep: top -> mid -> low -> leaf, and leaf fails.
      leaf = x86 "leaf" "echo compiling leaf; echo 'leaf.c:1: error: boom' >&2; exit 2";
      low = x86 "low" "echo ${leaf} > $out";
      mid = x86 "mid" "echo ${low} > $out";
      armLib = drv "armlib" "aarch64-linux" "echo armlib > $out" { };
    in {
      fail = x86 "fail" "echo 'fail.c:1: error: boom' >&2; exit 2";
      chain = x86 "top" "echo ${mid} > $out";
      arm = drv "armapp" "aarch64-linux" "echo ${armLib} > $out" { };
      znver4 = drv "znver4" "x86_64-linux" "echo znver4 > $out" { requiredSystemFeatures = [ "gccarch-znver4" ]; };
    };
}
