//! Shared memory for batches (Linux): the harness creates an anonymous memory file
//! (`memfd_create`) that grows to the largest batch and writes each batch into it between
//! exchanges; the worker maps it read-only.

/// The worker's read-only view of the shared memory batches arrive in.
pub(crate) struct SharedIn {
    file: std::fs::File,
    map: Option<memmap2::Mmap>,
}

impl SharedIn {
    pub(crate) fn new(fd: i32) -> SharedIn {
        use std::os::fd::FromRawFd;
        // SAFETY: the harness passes this fd to this process for this purpose only; nothing
        // else in the worker owns it.
        SharedIn { file: unsafe { std::fs::File::from_raw_fd(fd) }, map: None }
    }

    /// The first `bytes` bytes as f32 (mapping the file again when the harness grew it).
    pub(crate) fn get(&mut self, bytes: usize) -> std::io::Result<&[f32]> {
        if self.map.as_ref().is_none_or(|m| m.len() < bytes) {
            let size = self.file.metadata()?.len();
            if size < bytes as u64 {
                return Err(std::io::Error::other(format!("the shared memory holds {size} bytes, the batch {bytes}")));
            }
            // SAFETY: the harness writes the file only between batches, never while the
            // worker reads it (it waits for this batch's answer first), and never shrinks it.
            self.map = Some(unsafe { memmap2::MmapOptions::new().len(size as usize).map(&self.file)? });
        }
        let map = self.map.as_ref().expect("mapped");
        bytemuck::try_cast_slice(&map[..bytes])
            .map_err(|e| std::io::Error::other(format!("misaligned shared memory: {e}")))
    }
}

/// The harness's side of the shared memory: a memfd that grows to the largest batch.
pub(crate) struct SharedOut {
    pub(crate) file: std::fs::File,
    map: Option<memmap2::MmapMut>,
}

impl SharedOut {
    /// A new, empty shared memory file, or why not (then batches use the pipe).
    #[cfg(target_os = "linux")]
    pub(crate) fn new() -> std::io::Result<SharedOut> {
        use std::os::fd::FromRawFd;
        // SAFETY: memfd_create with a valid, NUL-terminated C string and a valid flag.
        let fd = unsafe { libc::memfd_create(c"shiftbench-batch".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is the new descriptor memfd_create just returned (checked >= 0 above),
        // owned by nothing else; the File owns and closes it.
        Ok(SharedOut { file: unsafe { std::fs::File::from_raw_fd(fd) }, map: None })
    }

    #[cfg(not(target_os = "linux"))]
    pub(crate) fn new() -> std::io::Result<SharedOut> {
        Err(std::io::Error::other("shared memory batches are implemented for Linux only"))
    }

    /// The first `bytes` of the shared memory, for the next batch to be written into, growing
    /// it first when needed. Page-aligned.
    pub(crate) fn reserve(&mut self, bytes: usize) -> std::io::Result<&mut [u8]> {
        if self.map.as_ref().is_none_or(|m| m.len() < bytes) {
            let size = bytes.next_power_of_two().max(1 << 20);
            self.file.set_len(size as u64)?;
            // SAFETY: only this process writes the file, through this map, between batches; the
            // worker maps it read-only and reads it only while a batch is in flight (not now).
            self.map = Some(unsafe { memmap2::MmapOptions::new().len(size).map_mut(&self.file)? });
        }
        Ok(&mut self.map.as_mut().expect("mapped")[..bytes])
    }

    /// Copies `data` to the start of the shared memory, growing it first when needed.
    pub(crate) fn put(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.reserve(data.len())?.copy_from_slice(data);
        Ok(())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// A batch put into the harness's shared memory is what the worker's side reads, also after
    /// the memory grew, through a separate descriptor (as the worker has its own).
    #[test]
    fn shared_memory_carries_batches_and_grows() {
        let mut out = SharedOut::new().expect("memfd");
        // SAFETY: dup of a live fd; the new fd is handed to SharedIn, which owns it.
        let fd = unsafe { libc::dup(out.file.as_raw_fd()) };
        assert!(fd >= 0);
        let mut inp = SharedIn::new(fd);
        for n in [10usize, 300_000, 5, 1_000_000] {
            let batch: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 7.0).collect();
            out.put(bytemuck::cast_slice(&batch)).unwrap();
            assert_eq!(inp.get(n * 4).unwrap(), &batch[..]);
        }
        // Asking for more than the harness put there is an error, not a read past the end.
        assert!(inp.get(1 << 30).is_err());
    }
}
