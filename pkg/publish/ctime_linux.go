package publish

import "syscall"

// ctime is the inode change time of st, in ns.
func ctime(st *syscall.Stat_t) int64 { return st.Ctim.Nano() }
