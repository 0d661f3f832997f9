//! permessage-deflate (RFC 7692) settings on client and server options.

use super::boundary::status_boundary;
use super::extensible::{field, init_extensible, read_extensible, Extensible};
use super::options::{with, wsffi_client_options, wsffi_server_options};
use super::status::{wsffi_status, Status};
use crate::core::extensions::deflate::DeflateConfig;

/// permessage-deflate parameters. Fill one with `wsffi_deflate_params_init(&p, sizeof p)`
/// first, then change the fields you care about, so fields added later keep their defaults.
/// The size rule of the header's introduction applies: fields beyond a smaller `size` take
/// their defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wsffi_deflate_params {
    /// `sizeof(struct wsffi_deflate_params)` as the caller's header declares it (set by
    /// `wsffi_deflate_params_init`).
    pub size: usize,
    /// Server: always reset the compressor after each message (clients are told so).
    /// Client: ask the server to. Default false.
    pub server_no_context_takeover: bool,
    /// Client: reset our compressor after each message (and say so in the offer).
    /// Server: require clients to. Default false.
    pub client_no_context_takeover: bool,
    /// Largest LZ77 window (log2 bytes, 8..=15) the server compresses with. Server: its
    /// limit. Client: requested from the server when below 15. Default 15.
    pub server_max_window_bits: u8,
    /// Largest window (8..=15) the client compresses with. Client: offered. Server: imposed
    /// on clients that accept a limit (offers that cannot be limited are declined when this
    /// is below 15). Default 15.
    pub client_max_window_bits: u8,
    /// Messages shorter than this many bytes are sent uncompressed. Default 64.
    pub threshold: usize,
    /// zlib compression level 0..=9 (1 fastest, 9 smallest). Default 6.
    pub level: u32,
    /// zlib memory level 1..=9: lower saves memory per connection, costs ratio. Default 8.
    pub mem_level: u8,
}

impl From<DeflateConfig> for wsffi_deflate_params {
    fn from(c: DeflateConfig) -> Self {
        wsffi_deflate_params {
            size: std::mem::size_of::<Self>(),
            server_no_context_takeover: c.server_no_context_takeover,
            client_no_context_takeover: c.client_no_context_takeover,
            server_max_window_bits: c.server_max_window_bits,
            client_max_window_bits: c.client_max_window_bits,
            threshold: c.threshold,
            level: c.level,
            mem_level: c.mem_level,
        }
    }
}

impl From<wsffi_deflate_params> for DeflateConfig {
    fn from(p: wsffi_deflate_params) -> Self {
        DeflateConfig {
            server_no_context_takeover: p.server_no_context_takeover,
            client_no_context_takeover: p.client_no_context_takeover,
            server_max_window_bits: p.server_max_window_bits,
            client_max_window_bits: p.client_max_window_bits,
            threshold: p.threshold,
            level: p.level,
            mem_level: p.mem_level,
        }
    }
}

// SAFETY: every field after `size` is listed in order. The two bools must hold 0 or 1, as
// C's `bool` always does.
unsafe impl Extensible for wsffi_deflate_params {
    const NAME: &'static str = "wsffi_deflate_params";
    const FIELDS: &'static [(&'static str, usize, usize)] = &[
        field!(wsffi_deflate_params, server_no_context_takeover: bool),
        field!(wsffi_deflate_params, client_no_context_takeover: bool),
        field!(wsffi_deflate_params, server_max_window_bits: u8),
        field!(wsffi_deflate_params, client_max_window_bits: u8),
        field!(wsffi_deflate_params, threshold: usize),
        field!(wsffi_deflate_params, level: u32),
        field!(wsffi_deflate_params, mem_level: u8),
    ];
    fn defaults() -> Self {
        DeflateConfig::default().into()
    }
}

/// Fills the `size` bytes at `params` (pass `sizeof *params`) with the defaults listed on
/// `wsffi_deflate_params` and sets `params->size`. `WSFFI_STATUS_ERR_NULL_PARAMETER` for a
/// NULL `params`; `WSFFI_STATUS_ERR_INVALID_PARAMETER` for a size smaller than the `size`
/// field or ending inside a field.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_deflate_params_init(params: *mut wsffi_deflate_params, size: usize) -> wsffi_status {
    status_boundary!({
        if params.is_null() {
            return Err(Status::ErrNullParameter);
        }
        // SAFETY: non-NULL, points to `size` bytes of caller-owned storage.
        unsafe { init_extensible(params, size) }.map_err(|_| Status::ErrInvalidParameter)
    })
}

/// Checks and converts caller parameters.
fn read_params(params: *const wsffi_deflate_params) -> Result<DeflateConfig, Status> {
    if params.is_null() {
        return Err(Status::ErrNullParameter);
    }
    // SAFETY: non-NULL, points to a caller-owned struct of the size it declares.
    let config: DeflateConfig = unsafe { read_extensible(params) }.map_err(|_| Status::ErrInvalidParameter)?.into();
    config.validate().map_err(|_| Status::ErrInvalidParameter)?;
    Ok(config)
}

/// Turns permessage-deflate on (keeping parameters set before) or off.
fn set_enabled(deflate: &mut Option<DeflateConfig>, enabled: bool) -> Result<(), Status> {
    *deflate = enabled.then(|| deflate.unwrap_or_default());
    Ok(())
}

/// Turns permessage-deflate on with checked parameters.
fn set_params(deflate: &mut Option<DeflateConfig>, params: *const wsffi_deflate_params) -> Result<(), Status> {
    *deflate = Some(read_params(params)?);
    Ok(())
}

/// Offer permessage-deflate (default: on, with default parameters) or not.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_per_message_deflate(
    options: *mut wsffi_client_options,
    enabled: bool,
) -> wsffi_status {
    with(options, |o| set_enabled(&mut o.config.deflate, enabled))
}

/// Offers permessage-deflate with these parameters (enables it). Out-of-range values give
/// `WSFFI_STATUS_ERR_INVALID_PARAMETER` and change nothing.
/// NULL `options` or `params`: WSFFI_STATUS_ERR_NULL_PARAMETER; a `params->size` that
/// breaks the size rule: WSFFI_STATUS_ERR_INVALID_PARAMETER. The parameters are copied.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_deflate_params(
    options: *mut wsffi_client_options,
    params: *const wsffi_deflate_params,
) -> wsffi_status {
    with(options, |o| set_params(&mut o.config.deflate, params))
}

/// Accept permessage-deflate from clients that offer it (default: off).
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_options_set_per_message_deflate(
    options: *mut wsffi_server_options,
    enabled: bool,
) -> wsffi_status {
    with(options, |o| set_enabled(&mut o.config.deflate, enabled))
}

/// Accepts permessage-deflate with these parameters (enables it). Out-of-range values give
/// `WSFFI_STATUS_ERR_INVALID_PARAMETER` and change nothing.
/// NULL `options` or `params`: WSFFI_STATUS_ERR_NULL_PARAMETER; a `params->size` that
/// breaks the size rule: WSFFI_STATUS_ERR_INVALID_PARAMETER. The parameters are copied.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_options_set_deflate_params(
    options: *mut wsffi_server_options,
    params: *const wsffi_deflate_params,
) -> wsffi_status {
    with(options, |o| set_params(&mut o.config.deflate, params))
}
