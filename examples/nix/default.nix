# An OCI image built by the static mkimage inside the Nix sandbox, with
# builtins only (no nixpkgs). The builder is mkimage itself: the sandbox
# holds nothing but the store paths below, so `--sysroot /` is exactly the
# declared inputs, and a program's PT_INTERP and DT_RUNPATH into
# /nix/store resolve there as the loader would resolve them.
#
#   nix-build examples/nix --arg mkimage ./mkimage --arg app ./app \
#     [--argstr libs /nix/store/...-libs]
#   nix-build examples/nix ... --check     # rebuilt: the same bytes
{
  # The static mkimage (RUSTFLAGS='-C target-feature=+crt-static').
  mkimage,
  # The program: the image's entrypoint.
  app,
  # The store path (a string) of the libraries the program's PT_INTERP
  # and DT_RUNPATH name, if any: builtins.storePath makes it an input, so
  # the sandbox holds it.
  libs ? null,
  name ? "app",
  tag ? "${name}:latest",
}:
derivation {
  inherit name;
  system = builtins.currentSystem;
  builder = mkimage;
  # The image layout, and its manifest digest on its own.
  outputs = [ "out" "digest" ];
  libs = if libs == null then "" else builtins.storePath libs;
  args = [
    "--from-binary" "${app}:/usr/local/bin/${name}"
    "--sysroot" "/"
    # Nothing else of the sandbox's / is wanted in the image.
    "--ca-certs" "none"
    "--tzdata" "none"
    "-t" tag
    "-o" (builtins.placeholder "out")
    "--digest-file" (builtins.placeholder "digest")
    "--quiet"
  ];
}
