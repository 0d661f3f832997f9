//! Reading structs that C passes by pointer and that may grow: each starts with a `size_t
//! size` that the caller sets to `sizeof` of the struct as its header declared it.
//!
//! Fields are only ever appended. A caller built against an older header passes a smaller
//! size: the fields it does not cover keep their defaults. A caller built against a newer
//! header passes a larger size: accepted when every byte the library does not know is zero
//! (the caller left the newer fields unset), refused otherwise, so a request the library
//! cannot honour never passes silently.

use std::mem::size_of;

use super::boundary::status_boundary;
use super::callbacks::{wsffi_conn_callbacks, wsffi_server_callbacks};
use super::status::{wsffi_status, Status};

/// A struct whose first field is `size: usize` and whose other fields are listed in order.
///
/// # Safety
/// `FIELDS` lists every field after `size` as `(name, offset, length)`, in order of offset,
/// and any bit pattern of those bytes is a valid value of the field.
pub unsafe trait Extensible: Copy {
    /// The C name, for messages.
    const NAME: &'static str;
    /// Every field after `size`: name, byte offset, byte length.
    const FIELDS: &'static [(&'static str, usize, usize)];
    /// The value of the fields a caller's size does not cover (with `size` set).
    fn defaults() -> Self;
}

/// `(name, offset, length)` of one field, for [`Extensible::FIELDS`].
macro_rules! field {
    ($ty:ty, $name:ident: $field_ty:ty) => {
        (stringify!($name), ::std::mem::offset_of!($ty, $name), ::std::mem::size_of::<$field_ty>())
    };
}
pub(crate) use field;

/// Copies the caller's struct at `ptr` by the size it declares; see the module docs.
///
/// # Safety
/// `ptr` is non-NULL, aligned for `T`, and points to at least `(*ptr).size` readable bytes
/// (at least `size_of::<usize>()`).
pub unsafe fn read_extensible<T: Extensible>(ptr: *const T) -> Result<T, String> {
    // SAFETY: the size field comes first and is readable per the caller's contract.
    let size = unsafe { ptr.cast::<usize>().read() };
    let known = size_of::<T>();
    check_size::<T>(size)?;
    let bytes = ptr.cast::<u8>();
    if size > known {
        // SAFETY: the caller declared `size` readable bytes.
        let tail = unsafe { std::slice::from_raw_parts(bytes.add(known), size - known) };
        if let Some(at) = tail.iter().position(|&b| b != 0) {
            return Err(format!(
                "{}: size {size} is larger than this library knows ({known}) and byte {} is not zero: \
                 a field this library does not support is set",
                T::NAME,
                known + at
            ));
        }
    }
    let mut out = T::defaults();
    let dst = (&mut out as *mut T).cast::<u8>();
    for &(_, offset, len) in T::FIELDS {
        if offset + len <= size {
            // SAFETY: both ranges lie within their structs (`offset + len <= known` by the
            // trait contract, `<= size` checked); the bytes form a valid field value.
            unsafe { std::ptr::copy_nonoverlapping(bytes.add(offset), dst.add(offset), len) };
        }
    }
    Ok(out)
}

/// As [`read_extensible`]; NULL gives `None`.
///
/// # Safety
/// `ptr` is NULL or as for [`read_extensible`].
pub unsafe fn read_optional<T: Extensible>(ptr: *const T) -> Result<Option<T>, String> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { read_extensible(ptr) }.map(Some)
}

/// Fills the caller's struct of `size` bytes at `ptr` with the defaults of the fields it
/// covers and zeros beyond them, and sets its `size` field to `size`.
///
/// # Safety
/// `ptr` is non-NULL, aligned for `T`, and points to `size` writable bytes.
pub unsafe fn init_extensible<T: Extensible>(ptr: *mut T, size: usize) -> Result<(), String> {
    check_size::<T>(size)?;
    let bytes = ptr.cast::<u8>();
    // SAFETY: the caller declared `size` writable bytes.
    unsafe { std::ptr::write_bytes(bytes, 0, size) };
    let defaults = T::defaults();
    let src = (&defaults as *const T).cast::<u8>();
    for &(_, offset, len) in T::FIELDS.iter().filter(|&&(_, offset, len)| offset + len <= size) {
        // SAFETY: the field lies within both structs (checked against `size`, and within
        // `T` by the trait contract).
        unsafe { std::ptr::copy_nonoverlapping(src.add(offset), bytes.add(offset), len) };
    }
    // SAFETY: `size >= size_of::<usize>()` (checked) and the size field comes first.
    unsafe { ptr.cast::<usize>().write(size) };
    Ok(())
}

/// Fills a struct the caller allocated for the library to fill (a stats snapshot): the caller
/// set its `size`; the fields that lie within it get `value`'s, bytes beyond the fields this
/// library knows are zeroed, and `size` becomes `min(size, size_of::<T>())`, so a caller built
/// against a newer header sees which fields were filled.
///
/// # Safety
/// `ptr` is non-NULL, aligned for `T`, and points to at least `(*ptr).size` writable bytes
/// (at least `size_of::<usize>()`).
pub unsafe fn write_extensible<T: Extensible>(ptr: *mut T, value: &T) -> Result<(), String> {
    // SAFETY: the size field comes first and is readable per the caller's contract.
    let size = unsafe { ptr.cast::<usize>().read() };
    check_size::<T>(size)?;
    let known = size_of::<T>();
    let bytes = ptr.cast::<u8>();
    let src = (value as *const T).cast::<u8>();
    for &(_, offset, len) in T::FIELDS.iter().filter(|&&(_, offset, len)| offset + len <= size) {
        // SAFETY: the field lies within both structs (checked against `size`, and within `T`
        // by the trait contract).
        unsafe { std::ptr::copy_nonoverlapping(src.add(offset), bytes.add(offset), len) };
    }
    if size > known {
        // SAFETY: the caller declared `size` writable bytes.
        unsafe { std::ptr::write_bytes(bytes.add(known), 0, size - known) };
    }
    // SAFETY: `size >= size_of::<usize>()` (checked) and the size field comes first.
    unsafe { ptr.cast::<usize>().write(size.min(known)) };
    Ok(())
}

/// A size too small for the size field itself, or one that ends inside a field, is refused.
fn check_size<T: Extensible>(size: usize) -> Result<(), String> {
    if size < size_of::<usize>() {
        return Err(format!(
            "{}: size {size} is too small; set size to sizeof(struct {}) (or use its init function)",
            T::NAME,
            T::NAME
        ));
    }
    match T::FIELDS.iter().find(|&&(_, offset, len)| offset < size && size < offset + len) {
        Some((name, _, _)) => Err(format!("{}: size {size} ends inside field {name}", T::NAME)),
        None => Ok(()),
    }
}

/// Fills the `size` bytes at `callbacks` (pass `sizeof *callbacks`) with NULL callbacks and
/// sets `callbacks->size`. `WSFFI_STATUS_ERR_NULL_PARAMETER` for a NULL `callbacks`;
/// `WSFFI_STATUS_ERR_INVALID_PARAMETER` for a size smaller than the `size` field or ending
/// inside a field.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_conn_callbacks_init(callbacks: *mut wsffi_conn_callbacks, size: usize) -> wsffi_status {
    init_exported(callbacks, size)
}

/// As `wsffi_conn_callbacks_init`, for `struct wsffi_server_callbacks`: NULL `callbacks`
/// gives WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_callbacks_init(callbacks: *mut wsffi_server_callbacks, size: usize) -> wsffi_status {
    init_exported(callbacks, size)
}

fn init_exported<T: Extensible>(ptr: *mut T, size: usize) -> wsffi_status {
    status_boundary!({
        if ptr.is_null() {
            return Err(Status::ErrNullParameter);
        }
        // SAFETY: non-NULL, points to `size` bytes of caller-owned storage.
        unsafe { init_extensible(ptr, size) }.map_err(|_| Status::ErrInvalidParameter)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Sample {
        size: usize,
        a: u32,
        b: u8,
        c: u64,
    }

    // SAFETY: every field after `size` is listed, in order; any bit pattern is valid for each.
    unsafe impl Extensible for Sample {
        const NAME: &'static str = "sample";
        const FIELDS: &'static [(&'static str, usize, usize)] =
            &[field!(Sample, a: u32), field!(Sample, b: u8), field!(Sample, c: u64)];
        fn defaults() -> Self {
            Sample { size: size_of::<Sample>(), a: 1, b: 2, c: 3 }
        }
    }

    /// A caller's buffer: the struct followed by bytes of a newer layout.
    #[repr(C)]
    struct Newer {
        sample: Sample,
        extra: [u8; 16],
    }

    fn read(newer: &Newer) -> Result<Sample, String> {
        // SAFETY: `newer` holds `size_of::<Newer>()` readable bytes, enough for any size
        // these tests set.
        unsafe { read_extensible(&newer.sample) }
    }

    fn caller(size: usize) -> Newer {
        Newer { sample: Sample { size, a: 10, b: 20, c: 30 }, extra: [0; 16] }
    }

    /// The listed fields of each real struct are in order, do not overlap, and lie inside it.
    fn assert_fields_consistent<T: Extensible>() {
        let mut end = size_of::<usize>();
        for &(name, offset, len) in T::FIELDS {
            assert!(offset >= end && len > 0, "{}: field {name} overlaps the one before", T::NAME);
            end = offset + len;
        }
        assert!(end <= size_of::<T>() && size_of::<T>() - end < size_of::<usize>(), "{}: fields missing", T::NAME);
    }

    #[test]
    fn the_published_structs_list_their_fields() {
        assert_fields_consistent::<wsffi_conn_callbacks>();
        assert_fields_consistent::<wsffi_server_callbacks>();
        assert_fields_consistent::<crate::ffi::deflate_options::wsffi_deflate_params>();
        assert_fields_consistent::<crate::ffi::stats::wsffi_conn_stats>();
        assert_fields_consistent::<crate::ffi::stats::wsffi_server_stats>();
        assert_fields_consistent::<crate::ffi::stats::wsffi_reactor_stats>();
        assert_fields_consistent::<Sample>();
    }

    #[test]
    fn a_full_size_reads_every_field() {
        let got = read(&caller(size_of::<Sample>())).unwrap();
        assert_eq!((got.a, got.b, got.c), (10, 20, 30));
    }

    #[test]
    fn fields_beyond_a_smaller_size_keep_their_defaults() {
        let got = read(&caller(std::mem::offset_of!(Sample, c))).unwrap();
        assert_eq!((got.a, got.b, got.c), (10, 20, 3));
        let got = read(&caller(size_of::<usize>())).unwrap();
        assert_eq!((got.a, got.b, got.c), (1, 2, 3));
    }

    #[test]
    fn a_larger_size_needs_zero_extra_bytes() {
        let mut newer = caller(size_of::<Newer>());
        assert_eq!(read(&newer).unwrap().c, 30);
        newer.extra[5] = 1;
        let err = read(&newer).unwrap_err();
        assert!(err.contains("is not zero"), "{err}");
    }

    #[test]
    fn sizes_too_small_or_inside_a_field_are_refused() {
        assert!(read(&caller(0)).unwrap_err().contains("too small"));
        assert!(read(&caller(size_of::<usize>() - 1)).unwrap_err().contains("too small"));
        let inside_c = std::mem::offset_of!(Sample, c) + 1;
        assert!(read(&caller(inside_c)).unwrap_err().contains("inside field c"));
    }

    #[test]
    fn write_fills_the_covered_fields_zeros_the_unknown_tail_and_sets_the_size() {
        let value = Sample { size: size_of::<Sample>(), a: 10, b: 20, c: 30 };
        let mut newer = Newer { sample: Sample { size: size_of::<Newer>(), a: 0, b: 0, c: 0 }, extra: [7; 16] };
        // SAFETY: `newer` has `size_of::<Newer>()` writable bytes.
        unsafe { write_extensible(&mut newer.sample, &value) }.unwrap();
        assert_eq!(newer.sample, value, "size becomes the library's");
        assert_eq!(newer.extra, [0; 16]);

        let prefix = std::mem::offset_of!(Sample, c);
        let mut old = Sample { size: prefix, a: 0, b: 0, c: 99 };
        // SAFETY: `old` is larger than `prefix` bytes.
        unsafe { write_extensible(&mut old, &value) }.unwrap();
        assert_eq!(old, Sample { size: prefix, a: 10, b: 20, c: 99 }, "bytes beyond size untouched");
        let mut zeroed = Sample { size: 0, a: 0, b: 0, c: 0 };
        // SAFETY: as above.
        assert!(unsafe { write_extensible(&mut zeroed, &value) }.unwrap_err().contains("too small"));
        assert_eq!(zeroed.a, 0, "nothing written on error");
    }

    #[test]
    fn init_writes_defaults_for_the_covered_fields_and_zeros_beyond() {
        let mut newer = Newer { sample: Sample { size: 0, a: 0, b: 0, c: 0 }, extra: [7; 16] };
        // SAFETY: `newer` has `size_of::<Newer>()` writable bytes.
        unsafe { init_extensible(&mut newer.sample, size_of::<Newer>()) }.unwrap();
        assert_eq!(newer.sample, Sample { size: size_of::<Newer>(), a: 1, b: 2, c: 3 });
        assert_eq!(newer.extra, [0; 16]);

        let mut old = Sample { size: 0, a: 0, b: 0, c: 99 };
        let prefix = std::mem::offset_of!(Sample, c);
        // SAFETY: `old` is larger than `prefix` bytes.
        unsafe { init_extensible(&mut old, prefix) }.unwrap();
        assert_eq!(old, Sample { size: prefix, a: 1, b: 2, c: 99 }, "bytes beyond size untouched");
        // SAFETY: as above.
        assert!(unsafe { init_extensible(&mut old, 3) }.is_err());
    }
}
