package reconciler

import "gitlab.com/hydrafy/hydrafy/bot/pin"

// PinFind finds the references of image with package pin, the same parser
// that writes the pins.
func PinFind(src []byte, image string) ([]Pin, error) {
	refs, err := pin.References(src, image)
	if err != nil {
		return nil, err
	}
	out := make([]Pin, 0, len(refs))
	for _, r := range refs {
		out = append(out, Pin{Line: r.Line, Raw: r.Raw, Tag: r.Tag, Digest: r.Digest})
	}
	return out, nil
}
