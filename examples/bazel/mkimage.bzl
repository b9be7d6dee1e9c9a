"""mkimage_image and mkimage_push: OCI images from Bazel-built artifacts.

mkimage_image runs the static mkimage as one action whose inputs are all
declared (the binaries, the trees' files, the sysroot, the CA bundle and
mkimage itself) and whose outputs are the image (an OCI layout as a tree
artifact, or an oci-archive) and its manifest digest. The action reads
nothing else, so it runs unchanged in Bazel's sandbox and on a remote
executor, and it is deterministic, so its outputs are cached by content.
"""

MkimageInfo = provider(
    doc = "An image mkimage_image built.",
    fields = {
        "image": "File: the OCI layout directory (format 'oci') or the oci-archive",
        "digest": "File: the manifest digest, sha256:... (mkimage --digest-file)",
        "format": "'oci' or 'oci-archive'",
        "tags": "list of the image's tags",
    },
)

def _common_dir(paths):
    """The longest directory every path lies in."""
    dirs = [p.split("/")[:-1] for p in paths]
    common = dirs[0]
    for d in dirs[1:]:
        n = 0
        for i in range(min(len(common), len(d))):
            if common[i] != d[i]:
                break
            n = i + 1
        common = common[:n]
    return "/".join(common)

def _words(d, flag):
    return ["%s=%s=%s" % (flag, k, v) for k, v in sorted(d.items())]

def _mkimage_image_impl(ctx):
    fmt = ctx.attr.format
    if fmt == "oci":
        image = ctx.actions.declare_directory(ctx.label.name + ".oci")
    else:
        image = ctx.actions.declare_file(ctx.label.name + ".tar")
    digest = ctx.actions.declare_file(ctx.label.name + ".digest")

    inputs = []
    args = ctx.actions.args()

    # The sysroot is the whole world of the build: libraries, locale,
    # time zones and package records come from it, never from the
    # machine the action runs on. Without one, an empty directory.
    if ctx.file.sysroot:
        sysroot = ctx.file.sysroot
        inputs.append(sysroot)
        inputs.extend(ctx.files.sysroot_files)
    else:
        sysroot = ctx.actions.declare_directory(ctx.label.name + ".sysroot")
        ctx.actions.run_shell(
            outputs = [sysroot],
            command = 'mkdir -p "$1"',
            arguments = [sysroot.path],
            mnemonic = "MkimageSysroot",
        )
        inputs.append(sysroot)
    args.add("--sysroot", sysroot.path)

    for target, dst in ctx.attr.binaries.items():
        for f in target.files.to_list():
            inputs.append(f)
            args.add("--from-binary", "%s:%s" % (f.path, dst))

    # Each file of a tree by name (--include SRC:DST): inputs reach the
    # sandbox as symlinks, which a directory walk would keep as links.
    for target, dst in ctx.attr.trees.items():
        files = target.files.to_list()
        if not files:
            continue
        base = _common_dir([f.short_path for f in files])
        for f in files:
            rel = f.short_path[len(base):].lstrip("/") if base else f.short_path
            inputs.append(f)
            args.add("--include", "%s:%s/%s" % (f.path, dst.rstrip("/"), rel))

    if ctx.file.ca_certs:
        inputs.append(ctx.file.ca_certs)
        args.add("--ca-certs", ctx.file.ca_certs.path)
    else:
        args.add("--ca-certs", "none")
    args.add("--tzdata", ctx.attr.tzdata)
    for t in ctx.attr.repo_tags:
        args.add("-t", t)
    for e in _words(ctx.attr.env, "--env"):
        args.add(e)
    for l in _words(ctx.attr.labels, "--label"):
        args.add(l)
    if ctx.attr.entrypoint:
        args.add("--entrypoint", json.encode(ctx.attr.entrypoint))
    if ctx.attr.cmd:
        args.add("--cmd", json.encode(ctx.attr.cmd))
    if ctx.attr.user:
        args.add("--user", ctx.attr.user)
    if ctx.attr.workdir:
        args.add("--workdir", ctx.attr.workdir)
    for p in ctx.attr.expose:
        args.add("--expose", p)
    args.add("--compression", ctx.attr.compression)
    if fmt != "oci":
        args.add("--format", fmt)
    args.add("-o", image.path)
    args.add("--digest-file", digest.path)
    args.add("--quiet")

    ctx.actions.run(
        executable = ctx.executable._mkimage,
        arguments = [args],
        inputs = inputs,
        outputs = [image, digest],
        mnemonic = "MkimageImage",
        progress_message = "mkimage %s" % ctx.label,
        # SOURCE_DATE_EPOCH unset: every mtime and `created` is 0.
        env = {},
    )
    return [
        DefaultInfo(files = depset([image, digest])),
        MkimageInfo(image = image, digest = digest, format = fmt, tags = ctx.attr.repo_tags),
    ]

mkimage_image = rule(
    implementation = _mkimage_image_impl,
    doc = "An OCI image of Bazel-built binaries and trees, built by mkimage in one action.",
    attrs = {
        "binaries": attr.label_keyed_string_dict(
            allow_files = True,
            doc = "Programs and the image path of each; their libraries come from the sysroot.",
        ),
        "trees": attr.label_keyed_string_dict(
            allow_files = True,
            doc = "Files, and the image directory their common directory becomes.",
        ),
        "sysroot": attr.label(
            allow_single_file = True,
            doc = "A directory (a tree artifact) holding the libraries and data the image takes; default: an empty one.",
        ),
        "sysroot_files": attr.label_list(
            allow_files = True,
            doc = "Files inside a source-directory sysroot, so Bazel tracks them.",
        ),
        "ca_certs": attr.label(allow_single_file = True, doc = "A PEM CA bundle; default: none."),
        "tzdata": attr.string(default = "none", doc = "all, none or ZONE,... from the sysroot."),
        "repo_tags": attr.string_list(mandatory = True, doc = "NAME:TAG of the image (Bazel reserves `tags`)."),
        "env": attr.string_dict(),
        "labels": attr.string_dict(),
        "entrypoint": attr.string_list(),
        "cmd": attr.string_list(),
        "user": attr.string(),
        "workdir": attr.string(),
        "expose": attr.string_list(),
        "compression": attr.string(default = "gzip", values = ["gzip", "zstd"]),
        "format": attr.string(default = "oci", values = ["oci", "oci-archive"]),
        "_mkimage": attr.label(
            default = "//tools:mkimage",
            executable = True,
            allow_single_file = True,
            cfg = "exec",
        ),
    },
)

def _mkimage_push_impl(ctx):
    info = ctx.attr.image[MkimageInfo]
    if info.format != "oci":
        fail("mkimage_push pushes an OCI layout: build %s with format = \"oci\"" % ctx.attr.image.label)
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ref = [ctx.attr.reference] if ctx.attr.reference else []
    ctx.actions.write(
        output = script,
        is_executable = True,
        content = "#!/bin/sh\n# bazel run %s -- [REF] [mkimage push flags]\nexec ./%s push ./%s %s \"$@\"\n" % (
            ctx.label,
            ctx.executable._mkimage.short_path,
            info.image.short_path,
            " ".join(["'%s'" % r for r in ref]),
        ),
    )
    runfiles = ctx.runfiles(files = [ctx.executable._mkimage, info.image, info.digest])
    return [DefaultInfo(executable = script, runfiles = runfiles)]

mkimage_push = rule(
    implementation = _mkimage_push_impl,
    executable = True,
    doc = "`bazel run` pushes the image: mkimage push LAYOUT REF, with the flags given after --.",
    attrs = {
        "image": attr.label(mandatory = True, providers = [MkimageInfo]),
        "reference": attr.string(doc = "Where to push, e.g. registry.example.com/app:1; else the first argument."),
        "_mkimage": attr.label(
            default = "//tools:mkimage",
            executable = True,
            allow_single_file = True,
            cfg = "target",
        ),
    },
)
