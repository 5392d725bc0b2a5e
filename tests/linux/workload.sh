# The Linux guest's memory workload: tests/linux/workload.sh DIR BUSYBOX
# Run by /init in the guest (DIR a tmpfs) and, to know the right answer, by
# tools/linux.sh on the build machine with the same busybox. It prints one
# line per part; every line depends only on the data, never on the kernel or
# the time, so the digest of its output is the same everywhere it runs right.
set -e
dir=$1 bb=$2

# 1. 200 fork+exec: the shell forks, the child execs the busybox binary by
#    its path (a real execve of a static ELF, never a shell built-in).
i=0
while [ $i -lt 200 ]; do
	"$bb" expr $i \* $i + 7 >> "$dir/exec.txt"
	i=$((i + 1))
done
echo "exec $(wc -l < "$dir/exec.txt") $(sha256sum < "$dir/exec.txt")"

# 2. A 16 MiB file in tmpfs: written (nine copies of the busybox binary, cut
#    to 16 MiB), copied, and the copy checksummed.
for n in 1 2 3 4 5 6 7 8 9; do cat "$bb"; done | head -c 16777216 > "$dir/a"
cp "$dir/a" "$dir/b"
echo "file $(wc -c < "$dir/b") $(sha256sum < "$dir/b")"

# 3. Mapping churn in four processes at once: each runs eight dd's whose
#    1 MiB buffer malloc() takes by mmap (above glibc's 128 KiB threshold)
#    and gives back by munmap, each piece checksummed in a piped md5sum;
#    every dd, md5sum and subshell is a new address space, torn down after.
w=0
while [ $w -lt 4 ]; do
	(
		k=0
		while [ $k -lt 8 ]; do
			dd if="$dir/b" bs=1M skip=$(((w * 8 + k) * 3 % 16)) count=1 2>/dev/null |
				md5sum >> "$dir/w$w.txt"
			k=$((k + 1))
		done
	) &
	w=$((w + 1))
done
wait
echo "churn $(cat "$dir/w0.txt" "$dir/w1.txt" "$dir/w2.txt" "$dir/w3.txt" | wc -l) $(cat "$dir/w0.txt" "$dir/w1.txt" "$dir/w2.txt" "$dir/w3.txt" | sha256sum)"
rm -f "$dir/a" "$dir/b"
