package records

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/storage/mem"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

func TestSealerBindsKeyAndAAD(t *testing.T) {
	if NewSealer(make([]byte, 16)) != nil {
		t.Fatal("NewSealer accepted a 16-byte key")
	}
	s := NewSealer(bytes.Repeat([]byte{1}, 32))
	blob, err := s.Seal([]byte("plain"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Open(blob, []byte("aad")); err != nil || string(got) != "plain" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other := NewSealer(bytes.Repeat([]byte{2}, 32))
	for name, open := range map[string]func() ([]byte, error){
		"other aad": func() ([]byte, error) { return s.Open(blob, []byte("aae")) },
		"other key": func() ([]byte, error) { return other.Open(blob, []byte("aad")) },
		"truncated": func() ([]byte, error) { return s.Open(blob[:10], []byte("aad")) },
		"flipped": func() ([]byte, error) {
			b := append([]byte(nil), blob...)
			b[len(b)-1] ^= 1
			return s.Open(b, []byte("aad"))
		},
		"version 1": func() ([]byte, error) { b := append([]byte(nil), blob...); b[0] = 1; return s.Open(b, []byte("aad")) },
		"version 3": func() ([]byte, error) { b := append([]byte(nil), blob...); b[0] = 3; return s.Open(b, []byte("aad")) },
		"salt flipped": func() ([]byte, error) {
			b := append([]byte(nil), blob...)
			b[1] ^= 1
			return s.Open(b, []byte("aad"))
		},
		"empty blob": func() ([]byte, error) { return s.Open(nil, []byte("aad")) },
	} {
		if _, err := open(); !errors.Is(err, ErrBlob) {
			t.Errorf("%s: Open = %v; want ErrBlob", name, err)
		}
	}
}

// TestSealerBlobKeys: each version 2 blob is sealed under a key of its own (derived from a
// fresh salt), never under the installation-wide key itself (SECURITY-NOTES C4); a version
// 1 blob, sealed under that key directly as before, still opens.
func TestSealerBlobKeys(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s := NewSealer(key)
	a, errA := s.Seal([]byte("plain"), []byte("aad"))
	b, errB := s.Seal([]byte("plain"), []byte("aad"))
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if a[0] != blobVersion2 || b[0] != blobVersion2 {
		t.Fatalf("Seal wrote versions %d and %d; want %d", a[0], b[0], blobVersion2)
	}
	if bytes.Equal(a[1:1+blobSaltLen], b[1:1+blobSaltLen]) {
		t.Fatal("two blobs share a salt, so a key")
	}
	// The installation-wide key itself does not open a version 2 blob.
	direct, err := newGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	rest := a[1+blobSaltLen:]
	if _, err := direct.Open(nil, rest[:blobNonceLen], rest[blobNonceLen:], []byte("aad")); err == nil {
		t.Fatal("the installation-wide key opened a version 2 blob: it is not sealed under a key of its own")
	}
	// A version 1 blob, as written before.
	nonce := bytes.Repeat([]byte{9}, blobNonceLen)
	v1 := direct.Seal(append([]byte{blobVersion1}, nonce...), nonce, []byte("old backup"), []byte("aad"))
	if got, err := s.Open(v1, []byte("aad")); err != nil || string(got) != "old backup" {
		t.Fatalf("Open(version 1 blob) = %q, %v; want the plaintext", got, err)
	}
	if _, err := s.Open(v1, []byte("other")); !errors.Is(err, ErrBlob) {
		t.Fatalf("Open(version 1 blob, other aad) = %v; want ErrBlob", err)
	}
}

func TestEachDueOrderAndDamage(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	type entry struct{ N int }
	err := st.Txn(ctx, func(tx storage.Tx) error {
		for _, d := range []int64{30, 10, 20, 40} {
			if err := Put(ctx, tx, ScheduleKey("s/", d, "t/v/x"), entry{N: int(d)}); err != nil {
				return err
			}
		}
		return tx.Put(ctx, "s/!damaged", []byte("{"))
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	if err := EachDue(ctx, st, "s/", time.Unix(30, 0), func(_ string, e entry) error { got = append(got, e.N); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != 10 || got[1] != 20 || got[2] != 30 {
		t.Errorf("due entries = %v; want 10 20 30 in order", got)
	}
	if _, err := st.Get(ctx, "s/!damaged"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a damaged entry was kept: %v", err)
	}
}

func TestRecoveryLevel(t *testing.T) {
	for _, c := range []struct {
		v    tenancy.Vault
		want string
	}{
		{tenancy.Vault{}, "Recoverable+Purgeable"},
		{tenancy.Vault{SoftDeleteRetention: 7}, "CustomizedRecoverable+Purgeable"},
		{tenancy.Vault{PurgeProtection: true}, "Recoverable"},
		{tenancy.Vault{SoftDeleteRetention: 30, PurgeProtection: true}, "CustomizedRecoverable"},
	} {
		if got := RecoveryLevel(c.v); got != c.want {
			t.Errorf("RecoveryLevel(%+v) = %s; want %s", c.v, got, c.want)
		}
	}
	if Retention(tenancy.Vault{}) != 90 || Retention(tenancy.Vault{SoftDeleteRetention: 7}) != 7 {
		t.Error("Retention defaults wrong")
	}
}

func TestLifecyclePurgeProtected(t *testing.T) {
	errProtected := errors.New("purge protection is enabled")
	l := Lifecycle{Noun: "secret", Protected: errProtected}
	err := l.PurgeProtected("Db-Password", 1700000000)
	want := `Operation "purge" is not allowed because purge protection is enabled for this vault. Secret Db-Password will be purged automatically at 2023-11-14T22:13:20Z, at the end of its retention period.`
	if !errors.Is(err, errProtected) || err.Error() != want {
		t.Errorf("PurgeProtected = %v; want %q wrapping %v", err, want, errProtected)
	}
}
