// Package ci holds the checks of ctxfit's CI configuration, which nothing
// on a Linux machine can run: the GitHub Actions workflow
// (.github/workflows/ci.yml) that tests ctxfit natively on macOS and
// Windows and builds the release artefacts, and the macOS app bundle's
// Info.plist. Its tests parse them; .ci/run also lints the workflow with
// actionlint.
package ci
