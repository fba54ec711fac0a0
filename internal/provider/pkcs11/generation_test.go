package pkcs11

import (
	"context"
	"strings"
	"testing"

	p11 "github.com/miekg/pkcs11"
)

// TestGenerationObject: the store generation lives in a private data object of the token,
// created on first store, rewritten in place, and refused if something else changed it.
func TestGenerationObject(t *testing.T) {
	p := newToken(t)
	ctx := context.Background()
	g := p.GenerationObject("coffer-seal-generation")
	if gen, found, err := g.LoadGeneration(ctx); err != nil || found || gen != 0 {
		t.Fatalf("LoadGeneration of a token without the object = %d, %v, %v; want 0, false, nil", gen, found, err)
	}
	for _, want := range []uint64{0, 7, 1 << 40, 3} {
		if err := g.StoreGeneration(ctx, want); err != nil {
			t.Fatalf("StoreGeneration(%d) = %v", want, err)
		}
		if gen, found, err := p.GenerationObject("coffer-seal-generation").LoadGeneration(ctx); err != nil || !found || gen != want {
			t.Fatalf("LoadGeneration = %d, %v, %v; want %d, true, nil", gen, found, err, want)
		}
	}
	if _, found, _ := p.GenerationObject("other-label").LoadGeneration(ctx); found {
		t.Error("another label found the object")
	}

	s, err := p.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer p.put(s, false)
	objs, err := g.find(s)
	if err != nil || len(objs) != 1 {
		t.Fatalf("objects labelled coffer-seal-generation = %d, %v; want exactly 1 after four stores", len(objs), err)
	}
	attrs, err := p.ctx.GetAttributeValue(s, objs[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_PRIVATE, nil), p11.NewAttribute(p11.CKA_TOKEN, nil)})
	if err != nil || !isTrue(attrs[0].Value) || !isTrue(attrs[1].Value) {
		t.Errorf("object attributes = %v, %v; want a private token object", attrs, err)
	}
	// Someone else's data object under the label is refused, not read as a generation.
	if _, err := p.ctx.CreateObject(s, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_DATA), p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_LABEL, "coffer-seal-generation"), p11.NewAttribute(p11.CKA_VALUE, []byte("something else"))}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.LoadGeneration(ctx); err == nil || !strings.Contains(err.Error(), "does not hold a store generation") {
		t.Errorf("LoadGeneration with a foreign object = %v; want a refusal", err)
	}
}
