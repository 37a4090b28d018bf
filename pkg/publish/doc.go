// Package publish writes an image index where it is wanted, through one
// Destination interface: a registry repository under one or more tags
// (registry.go, push.go, with the referrers of referrers.go, layers
// streamed while packed by growing.go, and the cache record of
// cacherecord.go), an OCI image layout or a docker archive (layout.go,
// output.go, layoutfile.go, dockerarchive.go), or nowhere (Discard). It
// also merges per-platform pushes into one index (merge.go).
//
// A registry push sends every blob, platform manifest and referrer before
// the index, so a tag never names an image that is only partly there, and
// reports per layer whether it was sent or was in the registry already.
// Talking to registries is pkg/registry's job; reading the layer cache,
// pkg/cache's.
package publish
