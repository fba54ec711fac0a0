package secrets

import (
	"testing"

	"github.com/coffer-kms/coffer/internal/records/recordstest"
)

// TestCloneIsDeep: the records the read caches hold are cloned deeply, so a caller's change
// never reaches the cache (and a field added later without a clone line fails here).
func TestCloneIsDeep(t *testing.T) {
	recordstest.CheckDeepClone(t, cloneSecretRecord)
	recordstest.CheckDeepClone(t, cloneVersionRecord)
}
