package shamir

import "testing"

// mulRef is an independent reference for mul: carry-less multiplication into 16 bits, then
// long division by the AES polynomial 0x11b. It branches freely; it only checks mul.
func mulRef(a, b byte) byte {
	var p uint16
	for i := range 8 {
		if b&(1<<i) != 0 {
			p ^= uint16(a) << i
		}
	}
	for i := 15; i >= 8; i-- {
		if p&(1<<i) != 0 {
			p ^= 0x11b << (i - 8)
		}
	}
	return byte(p)
}

func TestMulKnownValues(t *testing.T) {
	tests := []struct {
		name    string
		a, b    byte
		product byte
	}{
		{"aes/53-times-ca-is-one", 0x53, 0xca, 0x01},
		{"aes/ca-times-53-is-one", 0xca, 0x53, 0x01},
		{"fips197/57-times-83", 0x57, 0x83, 0xc1},
		{"fips197/57-times-13", 0x57, 0x13, 0xfe},
		{"fips197/xtime-57", 0x57, 0x02, 0xae},
		{"fips197/xtime-8e-reduces", 0x8e, 0x02, 0x07},
		{"vault/3-times-7", 0x03, 0x07, 0x09},
		{"zero/left", 0x00, 0x03, 0x00},
		{"zero/right", 0x03, 0x00, 0x00},
		{"identity/ff", 0x01, 0xff, 0xff},
		{"reduce/80-times-02", 0x80, 0x02, 0x1b},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mul(tt.a, tt.b); got != tt.product {
				t.Errorf("mul(%#02x, %#02x) = %#02x; want %#02x", tt.a, tt.b, got, tt.product)
			}
		})
	}
}

func TestDivideMatchesVault(t *testing.T) {
	// HashiCorp Vault's shamir tests pin div(0, 7) = 0, div(3, 3) = 1, div(6, 3) = 2 in the
	// same field; a/b here is mul(a, inv(b)).
	tests := []struct {
		name       string
		a, b, want byte
	}{
		{"vault/0-div-7", 0, 7, 0},
		{"vault/3-div-3", 3, 3, 1},
		{"vault/6-div-3", 6, 3, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mul(tt.a, inv(tt.b)); got != tt.want {
				t.Errorf("mul(%d, inv(%d)) = %d; want %d", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestMulMatchesReference(t *testing.T) {
	for a := range 256 {
		for b := range 256 {
			got, want := mul(byte(a), byte(b)), mulRef(byte(a), byte(b))
			if got != want {
				t.Fatalf("mul(%#02x, %#02x) = %#02x; want %#02x", a, b, got, want)
			}
		}
	}
}

func TestInvKnownValues(t *testing.T) {
	tests := []struct {
		name    string
		a, want byte
	}{
		{"zero-maps-to-zero", 0x00, 0x00},
		{"one", 0x01, 0x01},
		{"aes/53", 0x53, 0xca},
		{"aes/ca", 0xca, 0x53},
		{"two", 0x02, 0x8d},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := inv(tt.a); got != tt.want {
				t.Errorf("inv(%#02x) = %#02x; want %#02x", tt.a, got, tt.want)
			}
		})
	}
}

func TestInvAllNonZero(t *testing.T) {
	for a := 1; a < 256; a++ {
		i := inv(byte(a))
		if got := mul(byte(a), i); got != 1 {
			t.Errorf("mul(%#02x, inv(%#02x) = %#02x) = %#02x; want 0x01", a, a, i, got)
		}
		if got := inv(i); got != byte(a) {
			t.Errorf("inv(inv(%#02x)) = %#02x; want %#02x", a, got, a)
		}
	}
}
