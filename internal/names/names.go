// Package names owns the shapes of the names that become storage path segments: Key Vault
// object names, object versions, vault and pool names, and the tenant ids and store names
// a store's records live under. The checks are byte loops rather than regular expressions because they run on
// every data-plane request.
package names

// Object reports whether s is a Key Vault object name: 1–127 of [0-9a-zA-Z-].
func Object(s string) bool {
	if len(s) < 1 || len(s) > 127 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !alnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

// Version reports whether s is an object version: 32 lower-case hex digits.
func Version(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Store reports whether s is a vault or managed HSM pool name: 1–24 characters, an ASCII
// letter first, then [0-9a-zA-Z-], not ending in '-'.
func Store(s string) bool {
	if len(s) < 1 || len(s) > 24 || !letter(s[0]) || s[len(s)-1] == '-' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !alnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

// Segment reports whether s can be a path segment naming a tenant or a store: an ASCII
// letter or digit, then up to 63 of [0-9a-zA-Z._-].
func Segment(s string) bool {
	if len(s) < 1 || len(s) > 64 || !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !alnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool { return '0' <= c && c <= '9' || letter(c) }

func letter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
