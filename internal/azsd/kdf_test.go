package azsd

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// TestKDFVectors: outputs of the Azure CLI's sp800_108 (its own self-test vector, and a
// 512-bit key as the format derives them).
func TestKDFVectors(t *testing.T) {
	seq := make([]byte, 32)
	for i := range seq {
		seq[i] = byte(i)
	}
	for _, tc := range []struct {
		name, label, context string
		key                  []byte
		bits                 int
		want                 string
	}{
		{"ok/cli-self-test", "label", "context", bytes.Repeat([]byte{'A'}, 32), 256, "f0ca51f6308791404bf68b56024ee7c64d6c737716f81d47e1e68b5c4e399575"},
		{"ok/data-key", "coffer-sd/2", "", seq, 512, "8b47afc481049973929041356ae74e49c87ccbed02f6ef290f44e2709acae13a4ca4f23fc89d10c9b075bb9cf688ff100bde53eb2def94e6d2a8fbb74a725da3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := KDF(tc.key, tc.label, tc.context, tc.bits)
			if err != nil || hex.EncodeToString(got) != tc.want {
				t.Errorf("KDF(%q, %q, %d) = %x, %v; want %s", tc.label, tc.context, tc.bits, got, err, tc.want)
			}
		})
	}
	// Longer outputs are the spec's concatenation: the first block is the 512-bit output.
	long, err := KDF(seq, "coffer-sd/2", "", 1024)
	short, _ := KDF(seq, "coffer-sd/2", "", 512)
	if err != nil || len(long) != 128 || bytes.Equal(long[:64], short) {
		// [L] differs, so the first block differs too.
		t.Errorf("KDF(1024 bits) = %d bytes, %v; want 128 bytes whose first block depends on L", len(long), err)
	}
	for _, bits := range []int{0, -8, 7} {
		if _, err := KDF(seq, "x", "", bits); err == nil {
			t.Errorf("KDF(%d bits) = nil error", bits)
		}
	}
}
