// Package reconciler is hydrafy's level-triggered loop on the runner host.
//
// Each pass works out the desired digests (what the watched projects'
// default branches pin, plus an optional runner default image), subtracts
// the seeded digests recorded in state, stages every missing image's store
// while the runner is still busy, then drains the runner, commits the staged
// stores into the live store, points the runner's config.toml at the newest
// seeded digest, starts the runner again and records the result. One pass
// runs at a time; triggers that arrive meanwhile coalesce into one more pass.
package reconciler
