package sink

import (
	"errors"
	"fmt"
)

// Reset discards every object still open, unpublished, and returns the
// writer to where the last Advance that published everything left it:
// records written since then are forgotten, as is a failed Advance's
// watermark. A delivery spool (internal/spool, Resetter) calls it after a
// failed Write or Advance and then writes the same records again: they
// fill the same objects again, with the same content and so the same
// names, so a retry neither duplicates records inside an object nor
// publishes a second object for an already published one.
func (w *ObjectWriter) Reset() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("reset: %w", ErrClosed)
	}
	var errs []error
	for p, o := range w.open {
		delete(w.open, p)
		if err := o.pending.Discard(); err != nil {
			errs = append(errs, fmt.Errorf("discard object of period %d: %w", p, err))
		}
		w.recycle(o)
	}
	w.last = nil
	w.watermark = w.goodMark
	return errors.Join(errs...)
}

// Reset discards the objects still open; see ObjectWriter.Reset.
func (d *Dir) Reset() error { return d.w.Reset() }
