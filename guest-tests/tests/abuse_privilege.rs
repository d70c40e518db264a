//! Spec §14.1: NEWDEVICE, setting VERBOSE and setting MAXMSGSIZE need
//! CAP_SYS_ADMIN; without it they fail with EPERM and change nothing, while
//! the query forms stay open to everyone. The module parameter
//! `kbus_unprivileged_admin=1` restores the original openness, and
//! `kbus_max_devices` bounds NEWDEVICE (EINVAL, the spec's NEWDEVICE-limit
//! errno of §3.11/§3.13).
//!
//! The unprivileged side runs in a forked child as uid/gid 65534.

mod abuse_common;

use std::time::Duration;

use abuse_common::*;
use kbus_guest_tests::*;
use kbus_rustix::RawUpdate;

const DEV: u32 = 0;
const CHILD_TIME: Duration = Duration::from_secs(20);

/// How many devices exist (one `dev` line each in /proc/kbus/stats).
fn device_count() -> u32 {
    read_stats()
        .lines()
        .filter(|l| l.starts_with("dev "))
        .count() as u32
}

/// Device 0's VERBOSE flag and MAXMSGSIZE, put back by root on drop (so a
/// failing test does not leave them changed for the tests after it).
struct DeviceSettings {
    k: Ksock,
    verbose: bool,
    size: u32,
}

impl DeviceSettings {
    fn save() -> DeviceSettings {
        let k = open_rw(DEV);
        let verbose = ok(k.query_kernel_module_verbose(), "VERBOSE query");
        let size = ok(k.max_message_size(), "MAXMSGSIZE query");
        DeviceSettings { k, verbose, size }
    }

    #[track_caller]
    fn assert_unchanged(&self, what: &str) {
        assert_eq!(
            ok(self.k.query_kernel_module_verbose(), "VERBOSE query"),
            self.verbose,
            "{what}: VERBOSE changed"
        );
        assert_eq!(
            ok(self.k.max_message_size(), "MAXMSGSIZE query"),
            self.size,
            "{what}: MAXMSGSIZE changed"
        );
    }
}

impl Drop for DeviceSettings {
    fn drop(&mut self) {
        let _ = self.k.kernel_module_verbose(self.verbose);
        let _ = self.k.set_max_message_size(self.size);
    }
}

#[test]
fn unprivileged_admin_operations_fail_with_eperm_and_change_nothing() {
    let _admin = Knob::param("kbus_unprivileged_admin", "0");
    let saved = DeviceSettings::save();
    let devices = device_count();
    let abs = ok(saved.k.abs_max_message_size(), "MAXMSGSIZE 1");
    let new_size = if saved.size == 5000 { 6000 } else { 5000 };

    let mut child = fork_as("unprivileged admin", Some(NOBODY), move |ch| {
        let k = open_rw(DEV);
        expect_errno(k.new_device(), Errno::PERM, "NEWDEVICE as uid 65534");
        for v in [0, 1] {
            expect_errno(
                k.raw_update(RawUpdate::Verbose, v),
                Errno::PERM,
                &format!("VERBOSE {v} as uid 65534"),
            );
        }
        // Any value > 1 is a "set", even the current value or one the
        // module would otherwise refuse as too large.
        for v in [new_size, 100, abs] {
            expect_errno(
                k.raw_update(RawUpdate::MaxMessageSize, v),
                Errno::PERM,
                &format!("MAXMSGSIZE {v} as uid 65534"),
            );
        }
        // The query forms stay open.
        let verbose = ok(
            k.raw_update(RawUpdate::Verbose, 0xFFFF_FFFF),
            "VERBOSE query",
        );
        let size = ok(k.raw_update(RawUpdate::MaxMessageSize, 0), "MAXMSGSIZE 0");
        let abs = ok(k.raw_update(RawUpdate::MaxMessageSize, 1), "MAXMSGSIZE 1");
        // Per-Ksock settings are nobody else's business and stay open.
        ok(k.set_max_messages(7), "MAXMSGS");
        ok(k.want_messages_once(true), "MSGONLYONCE");
        ch.say(&format!("QUERIES {verbose} {size} {abs}"));
    });
    let q = child.chan.expect("QUERIES", CHILD_TIME);
    child.finish(CHILD_TIME);
    assert_eq!(
        q,
        format!("{} {} {abs}", u32::from(saved.verbose), saved.size),
        "the unprivileged queries (VERBOSE, MAXMSGSIZE 0, MAXMSGSIZE 1)"
    );
    saved.assert_unchanged("after the refused calls");
    assert_eq!(device_count(), devices, "a refused NEWDEVICE made a device");
}

#[test]
fn root_still_administers() {
    let _admin = Knob::param("kbus_unprivileged_admin", "0");
    let saved = DeviceSettings::save();
    let k = &saved.k;
    let prev = ok(k.kernel_module_verbose(!saved.verbose), "VERBOSE as root");
    assert_eq!(prev, saved.verbose);
    assert_eq!(ok(k.query_kernel_module_verbose(), "query"), !saved.verbose);
    ok(k.kernel_module_verbose(saved.verbose), "VERBOSE back");
    let new_size = if saved.size == 5000 { 6000 } else { 5000 };
    assert_eq!(ok(k.set_max_message_size(new_size), "MAXMSGSIZE"), new_size);
    assert_eq!(ok(k.max_message_size(), "query"), new_size);
    ok(k.set_max_message_size(saved.size), "MAXMSGSIZE back");
    let devices = device_count();
    let n = ok(k.new_device(), "NEWDEVICE as root");
    assert_eq!(n, devices, "NEWDEVICE makes the next device");
    assert_eq!(device_count(), devices + 1);
    drop(open_new_device(n));
}

#[test]
fn kbus_unprivileged_admin_restores_the_original_openness() {
    let _admin = Knob::param("kbus_unprivileged_admin", "1");
    let saved = DeviceSettings::save();
    let devices = device_count();
    let (verbose, size) = (saved.verbose, saved.size);
    let new_size = if size == 5000 { 6000 } else { 5000 };

    let mut child = fork_as("unprivileged admin, allowed", Some(NOBODY), move |ch| {
        let k = open_rw(DEV);
        let prev = ok(k.kernel_module_verbose(!verbose), "VERBOSE as uid 65534");
        assert_eq!(prev, verbose, "VERBOSE returns the previous value");
        assert_eq!(ok(k.query_kernel_module_verbose(), "query"), !verbose);
        ok(k.kernel_module_verbose(verbose), "VERBOSE back");
        assert_eq!(
            ok(k.set_max_message_size(new_size), "MAXMSGSIZE as uid 65534"),
            new_size
        );
        assert_eq!(ok(k.max_message_size(), "query"), new_size);
        ok(k.set_max_message_size(size), "MAXMSGSIZE back");
        let n = ok(k.new_device(), "NEWDEVICE as uid 65534");
        ch.say(&format!("NEWDEVICE {n}"));
    });
    let n: u32 = child
        .chan
        .expect("NEWDEVICE", CHILD_TIME)
        .parse()
        .expect("number");
    child.finish(CHILD_TIME);
    assert_eq!(n, devices, "NEWDEVICE makes the next device");
    assert_eq!(device_count(), devices + 1);
    drop(open_new_device(n));
    saved.assert_unchanged("after the child put them back");
}

#[test]
fn kbus_max_devices_bounds_newdevice() {
    let _admin = Knob::param("kbus_unprivileged_admin", "0");
    let devices = device_count();
    let max = Knob::param("kbus_max_devices", &devices.to_string());
    assert_eq!(
        max.old(),
        "256",
        "kbus_max_devices defaults to 256 (spec §14.1)"
    );
    let k = open_rw(DEV);
    expect_errno(
        k.new_device(),
        Errno::INVAL,
        "NEWDEVICE with kbus_max_devices devices (the NEWDEVICE limit, spec §3.11)",
    );
    assert_eq!(device_count(), devices, "a refused NEWDEVICE made a device");
    write_knob(
        &format!("{PARAMS}/kbus_max_devices"),
        &(devices + 1).to_string(),
    );
    let n = ok(k.new_device(), "NEWDEVICE below the raised limit");
    assert_eq!(n, devices);
    drop(open_new_device(n));
    expect_errno(k.new_device(), Errno::INVAL, "NEWDEVICE at the limit again");
    assert_eq!(device_count(), devices + 1);
}
