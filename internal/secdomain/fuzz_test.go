package secdomain

import (
	"context"
	"errors"
	"testing"
)

// FuzzUpload posts arbitrary upload values to a new pool that has its transfer key: a
// restore blob of the Azure CLI's format or a coffer-sd-upload/1 body. Upload must refuse
// with ErrBadParameter (or ErrActivated once a seed has restored a domain), and the pool is
// active exactly when an upload succeeded.
func FuzzUpload(f *testing.F) {
	ctx := context.Background()
	s := newService()
	c := testCustodians(f)
	p := pool("target")
	file, err := s.Download(ctx, pool("source"), jwks(c[0], c[1], c[2]), 2)
	if err != nil {
		f.Fatal(err)
	}
	good, err := restoreBlob(f, s, p, file, c[0], c[1])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	tk, err := s.TransferKey(ctx, p)
	if err != nil {
		f.Fatal(err)
	}
	pub, err := tk.PublicKey()
	if err != nil {
		f.Fatal(err)
	}
	blob, keys, _ := v1Fixture(f)
	f.Add(uploadV1(f, blob, pub, keys[0], keys[2]))
	f.Add(`{"format":"coffer-sd-upload/1","security_domain":"{}","transfer_key":"x","shares":[]}`)
	uploaded := false
	f.Fuzz(func(t *testing.T, text string) {
		err := s.Upload(ctx, p, text)
		switch {
		case err == nil:
			uploaded = true
		case errors.Is(err, ErrActivated) && uploaded, errors.Is(err, ErrBadParameter):
		default:
			t.Fatalf("Upload = %v; want ErrBadParameter", err)
		}
		if active, err := s.Active(ctx, p); err != nil || active != uploaded {
			t.Fatalf("Active = %v, %v after uploads that succeeded: %v", active, err, uploaded)
		}
	})
}
