#!/bin/sh
# Entrypoint of the mat-interp image.
#   (no args)                 -> CMD: the Streamlit app
#   worker [NAME] [options]   -> mat-interp worker ...   (`docker run IMAGE worker`)
#   -h / --help / --anything  -> mat-interp --anything
#   anything else             -> run as given (streamlit, mat-interp, python, sh ...)
# A worker reads the database URL (with its password) from MAT_INTERP_DATABASE_URL
# itself: it is never put on a command line, where any user of the machine reads it.
set -eu

case "${1:-}" in
    worker|-*) set -- mat-interp "$@" ;;
esac

if [ "${1:-}" = "mat-interp" ] && [ "${2:-}" = "worker" ]; then
    has_db=no
    for arg in "$@"; do
        case "$arg" in
            --database|--database=*) has_db=yes ;;
        esac
    done
    if [ "$has_db" = no ] && [ -z "${MAT_INTERP_DATABASE_URL:-}" ]; then
        echo "mat-interp worker: set MAT_INTERP_DATABASE_URL or pass --database URL" >&2
        exit 2
    fi
fi

exec "$@"
