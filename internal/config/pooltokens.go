package config

import (
	"regexp"
	"strings"
)

// PoolToken maps a managed HSM pool to the PKCS#11 token that holds its keys (setting
// pkcs11-pool-tokens). Every token is of the library pkcs11-library and opened with the PIN
// of pkcs11-pin-file.
type PoolToken struct {
	Pool  string // the pool's name, lower case
	Label string // the token's label
}

// poolName is what a managed HSM pool's name must look like (as tenancy checks vault
// names; this package imports no other Coffer package).
var poolName = regexp.MustCompile(`^[a-zA-Z]([0-9a-zA-Z-]{0,22}[0-9a-zA-Z])?$`)

// parsePoolTokens reads "pool=label,pool=label". It keeps malformed entries for Validate
// to report, so that every problem is reported at once.
func parsePoolTokens(c *Config, v string) error {
	c.PKCS11PoolTokens = nil
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		pool, label, _ := strings.Cut(e, "=")
		c.PKCS11PoolTokens = append(c.PKCS11PoolTokens, PoolToken{Pool: strings.ToLower(strings.TrimSpace(pool)), Label: strings.TrimSpace(label)})
	}
	return nil
}

// validatePoolTokens reports each problem of pkcs11-pool-tokens through bad: pool names
// that are no vault names, empty or overlong labels, a pool or a label given twice, a
// pool's token that is the default token (its keys would share it with the vaults'), and
// the setting without a library.
func (c *Config) validatePoolTokens(bad func(name, format string, args ...any)) {
	const name = "pkcs11-pool-tokens"
	if len(c.PKCS11PoolTokens) > 0 && c.PKCS11Library == "" {
		bad(name, "needs the PKCS#11 library: set pkcs11-library, pkcs11-token-label and pkcs11-pin-file")
	}
	pools, labels := map[string]bool{}, map[string]bool{}
	defaultLabel := c.PKCS11Token // a token label, public (not a token in the credential sense)
	for _, pt := range c.PKCS11PoolTokens {
		switch {
		case !poolName.MatchString(pt.Pool) || pt.Pool == "managedhsm":
			bad(name, "%.30q is not a managed HSM pool name (1-24 letters, digits and hyphens, starting with a letter): write pool=token-label", pt.Pool)
		case pools[pt.Pool]:
			bad(name, "pool %q is given twice", pt.Pool)
		}
		switch {
		case pt.Label == "" || len(pt.Label) > 32:
			bad(name, "pool %.30q: the token label must be 1 to 32 bytes: write pool=token-label", pt.Pool)
		case labels[pt.Label]:
			bad(name, "token %q is given to two pools: each pool needs its own token", pt.Label)
		case pt.Label == defaultLabel:
			bad(name, "pool %q: token %q is the default token (pkcs11-token-label): give the pool a token of its own", pt.Pool, pt.Label)
		}
		pools[pt.Pool], labels[pt.Label] = true, true
	}
}
