package keys

import (
	"testing"

	"github.com/coffer-kms/coffer/internal/provider"
)

func TestCreateWeight(t *testing.T) {
	for _, tt := range []struct {
		kty  provider.KeyType
		size int
		want int
	}{
		{provider.RSA, 2048, 1},
		{provider.RSA, 0, 1}, // BYOK without n: counted as the default size
		{provider.RSAHSM, 2048, 1},
		{provider.RSA, 3072, 4},
		{provider.RSAHSM, 3072, 4},
		{provider.RSA, 4096, 8},
		{provider.RSAHSM, 4096, 8},
		{provider.EC, 0, 1},
		{provider.ECHSM, 0, 1},
		{provider.OctHSM, 256, 1},
		{provider.Oct, 256, 1},
	} {
		if got := CreateWeight(tt.kty, tt.size); got != tt.want {
			t.Errorf("CreateWeight(%s, %d) = %d; want %d", tt.kty, tt.size, got, tt.want)
		}
	}
}
