//go:build integration

package outfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"gotest.tools/v3/assert"
)

// A character device is written through, and stays a device.
func TestDevice(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test makes a device node: run it as root")
	}
	dev := filepath.Join(t.TempDir(), "null")
	assert.NilError(t, syscall.Mknod(dev, syscall.S_IFCHR|0o666, int(mkdev(1, 3))))
	assert.NilError(t, write(t, dev, "into the void"))
	info, err := os.Lstat(dev)
	assert.NilError(t, err)
	assert.Assert(t, info.Mode()&os.ModeCharDevice != 0, "the device became %v", info.Mode())
}

func mkdev(major, minor uint64) uint64 {
	return (minor & 0xff) | (major&0xfff)<<8 | (minor&^0xff)<<12 | (major&^0xfff)<<32
}
