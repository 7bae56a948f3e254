// Builds SeaweedFS's `weed` (the S3-compatible server the tests and Compose
// use) from the Go module proxy: `go install` refuses a module whose go.mod has
// a replace directive, so this wrapper requires it and repeats that replace.
module docflow.local/seaweedfs

go 1.26.6

require github.com/seaweedfs/seaweedfs v0.0.0-20261109003541-7506e5f91cd6

replace github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0
