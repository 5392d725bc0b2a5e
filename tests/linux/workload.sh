# The Linux guest's memory workload: tests/linux/workload.sh DIR BUSYBOX
# Run by /init in the guest (DIR a tmpfs) and, to know the right answer, by
# tools/linux.sh on the build machine with the same busybox. It prints one
# line per part; every line depends only on the data, never on the kernel or
# the time, so the digest of its output is the same everywhere it runs right.
set -e
dir=$1 bb=$2

say() { echo "workload: $* (uptime $(cat /proc/uptime 2>/dev/null))" >&2; }

# 1. 200 fork+exec: the shell forks, the child execs the busybox binary by
#    its path (a real execve of a static ELF, never a shell built-in).
say "200 fork+exec"
i=0
while [ $i -lt 200 ]; do
	"$bb" expr $i \* $i + 7 >> "$dir/exec.txt"
	i=$((i + 1))
done
echo "exec $(wc -l < "$dir/exec.txt") $(md5sum < "$dir/exec.txt")"

# 2. A 16 MiB file in tmpfs: written (nine copies of the busybox binary, cut
#    to 16 MiB), copied, and the copy checksummed.
say "16 MiB file"
cat "$bb" "$bb" "$bb" "$bb" "$bb" "$bb" "$bb" "$bb" "$bb" > "$dir/a"
truncate -s 16777216 "$dir/a"
cp "$dir/a" "$dir/b"
echo "file $(stat -c %s "$dir/b") $(md5sum < "$dir/b")"

# 3. Mapping churn in four processes at once: each runs four dd's whose
#    1 MiB buffer malloc() takes by mmap (above glibc's 128 KiB threshold)
#    and gives back by munmap, each piece checksummed in a piped md5sum;
#    every dd, md5sum and subshell is a new address space, torn down after.
say "mapping churn"
w=0
while [ $w -lt 4 ]; do
	(
		k=0
		while [ $k -lt 4 ]; do
			dd if="$dir/b" bs=1M skip=$(((w * 4 + k) * 3 % 16)) count=1 2>/dev/null |
				md5sum >> "$dir/w$w.txt"
			k=$((k + 1))
		done
	) &
	w=$((w + 1))
done
wait
cat "$dir/w0.txt" "$dir/w1.txt" "$dir/w2.txt" "$dir/w3.txt" > "$dir/w.txt"
echo "churn $(wc -l < "$dir/w.txt") $(md5sum < "$dir/w.txt")"
say "done"
rm -f "$dir/a" "$dir/b"
