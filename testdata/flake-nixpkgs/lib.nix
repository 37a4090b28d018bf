# The few functions of nixpkgs' lib that the flake calls, with the same
# meaning. Anything else is missing on purpose: a new use shows up in the
# test and is added here only if real nixpkgs has it.
{
  # genAttrs [ "a" "b" ] f == { a = f "a"; b = f "b"; }
  genAttrs =
    names: f:
    builtins.listToAttrs (
      map (name: {
        inherit name;
        value = f name;
      }) names
    );
}
