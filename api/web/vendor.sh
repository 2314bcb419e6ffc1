#!/bin/sh
# Re-vendor the pages' third-party libraries from the npm registry, at the pinned versions,
# with their licence files, into api/web/static/vendor/ (committed: nothing is fetched at run
# time, so the pages and /docs work with no internet). Change a version here, run this script
# from anywhere, and commit what it wrote.
set -eu

LEAFLET=1.9.4
UPLOT=1.6.32
SWAGGER_UI=5.36.0

here=$(cd "$(dirname "$0")" && pwd)
out="$here/static/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

unpack() {  # unpack PACKAGE@VERSION into $work/PACKAGE
    (cd "$work" && npm pack --silent "$1@$2" >/dev/null)
    mkdir -p "$work/$1"
    tar xzf "$work/$1-$2.tgz" -C "$work/$1" --strip-components=1
}

take() {  # take PACKAGE DEST FILE... : copy files of an unpacked package into $out/DEST
    package=$1 dest=$2
    shift 2
    mkdir -p "$out/$dest"
    for file in "$@"; do
        cp -R "$work/$package/$file" "$out/$dest/"
    done
}

unpack leaflet "$LEAFLET"
unpack uplot "$UPLOT"
unpack swagger-ui-dist "$SWAGGER_UI"

rm -rf "$out"
take leaflet leaflet LICENSE dist/leaflet-src.esm.js dist/leaflet.css dist/images
take uplot uplot LICENSE dist/uPlot.esm.js dist/uPlot.min.css
take swagger-ui-dist swagger-ui LICENSE NOTICE swagger-ui-bundle.js \
    swagger-ui-bundle.js.LICENSE.txt swagger-ui.css favicon-32x32.png
printf 'leaflet %s\nuplot %s\nswagger-ui-dist %s\n' "$LEAFLET" "$UPLOT" "$SWAGGER_UI" \
    > "$out/VERSIONS"
echo "vendored into $out:"
cat "$out/VERSIONS"
