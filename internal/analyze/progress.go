package analyze

import (
	"io"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
)

// startProgress shows a progress bar of read against total bytes on w,
// refreshed a few times a second, until the returned stop is called.
func startProgress(w io.Writer, total int64, read *atomic.Int64) (stop func()) {
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("reading"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(true),
	)
	_ = bar.RenderBlank() // show it at once, even if reading is quick
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = bar.Set64(min(read.Load(), total))
			case <-done:
				_ = bar.Set64(min(read.Load(), total))
				_ = bar.Finish()
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
