//! The firmware's whole run time: `_start`, `exit_group`, stdout and the
//! panic handler, on raw system calls (rustix and a few lines of assembly).
//! No C library, no start files, no allocator.
//!
//! Without the `std` feature of kbus-rustix this module provides the ELF
//! entry point itself; link with `-nostartfiles` (see `main.rs`). With
//! `std` (host `cargo test`/`clippy` builds) the C library starts the
//! program and calls `main`, and only [`write_out`] is used.
//!
//! Kept in its own file so a size baseline can share it unchanged.

#![allow(dead_code)]

use rustix::fd::BorrowedFd;

/// Write all of `bytes` to standard output; errors are ignored (there is
/// nowhere to report them).
pub fn write_out(mut bytes: &[u8]) {
    // SAFETY: fd 1 is standard output for the life of the process; it is
    // only borrowed here, never closed.
    let out = unsafe { BorrowedFd::borrow_raw(1) };
    while !bytes.is_empty() {
        match rustix::io::write(out, bytes) {
            Ok(0) | Err(_) => return,
            Ok(n) => bytes = &bytes[n..],
        }
    }
}

/// `u` in decimal into `buf`; returns the digits.
pub fn decimal(mut u: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            return &buf[i..];
        }
    }
}

/// Write `u` in decimal to standard output.
pub fn write_u32(u: u32) {
    write_out(decimal(u, &mut [0; 10]));
}

#[cfg(not(feature = "std"))]
mod bare {
    use core::arch::{asm, global_asm};

    /// `exit_group(code)`: ends the process (all threads) at once.
    pub fn exit(code: i32) -> ! {
        // SAFETY: exit_group takes one integer and never returns.
        unsafe {
            #[cfg(target_arch = "x86_64")]
            asm!("syscall", in("rax") 231, in("rdi") code, options(noreturn, nostack));
            #[cfg(target_arch = "arm")]
            asm!("svc 0", in("r7") 248, in("r0") code, options(noreturn, nostack));
            // o32: number in $v0, argument in $a0.
            #[cfg(target_arch = "mips")]
            asm!("syscall", in("$2") 4246, in("$4") code, options(noreturn, nostack));
            #[cfg(target_arch = "aarch64")]
            asm!("svc 0", in("x8") 94, in("x0") code, options(noreturn, nostack));
            // i386: `int 0x80`, number in eax, argument in ebx (which LLVM
            // may reserve, hence the explicit move; nothing returns).
            #[cfg(target_arch = "x86")]
            asm!("mov ebx, {c}", "int 0x80", c = in(reg) code, in("eax") 252,
                 options(noreturn, nostack));
            #[cfg(target_arch = "s390x")]
            asm!("svc 0", in("r1") 248, in("r2") code, options(noreturn, nostack));
        }
    }

    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "arm",
        target_arch = "mips",
        target_arch = "aarch64",
        target_arch = "x86",
        target_arch = "s390x"
    )))]
    compile_error!(
        "the firmware example knows x86_64, x86, arm, aarch64, mips (o32) and s390x only"
    );

    /// Called by `_start` with the initial stack pointer (argc, argv...,
    /// envp..., auxv); the arguments are not used.
    extern "C" fn start_rust(_sp: *const usize) -> ! {
        exit(crate::firmware_main())
    }

    // The kernel enters `_start` with the stack pointer on argc. Clear the
    // frame pointer / return address so backtraces end here, pass the
    // stack pointer as the first argument and align the stack as the C ABI
    // wants at a call.
    #[cfg(target_arch = "x86_64")]
    global_asm!(
        ".globl _start",
        ".type _start,@function",
        "_start:",
        "xor ebp, ebp",
        "mov rdi, rsp",
        "and rsp, -16",
        "call {entry}",
        "ud2",
        entry = sym start_rust,
    );

    #[cfg(target_arch = "arm")]
    global_asm!(
        ".globl _start",
        ".type _start,%function",
        "_start:",
        "mov fp, #0",
        "mov lr, #0",
        "mov r0, sp",
        "bic sp, sp, #7",
        "bl {entry}",
        "udf #0",
        entry = sym start_rust,
    );

    // o32: the callee may use 16 bytes of argument save area above $sp; a
    // (possibly PIC) callee expects its own address in $t9.
    #[cfg(target_arch = "mips")]
    global_asm!(
        ".globl __start",
        ".globl _start",
        ".type _start,@function",
        ".set push",
        ".set noreorder",
        "__start:",
        "_start:",
        "move $fp, $zero",
        "move $ra, $zero",
        "move $a0, $sp",
        "li $t0, -8",
        "and $sp, $sp, $t0",
        "addiu $sp, $sp, -16",
        "lui $t9, %hi({entry})",
        "addiu $t9, $t9, %lo({entry})",
        "jalr $t9",
        "nop",
        "break",
        ".set pop",
        entry = sym start_rust,
    );

    #[cfg(target_arch = "aarch64")]
    global_asm!(
        ".globl _start",
        ".type _start,%function",
        "_start:",
        "mov x29, #0",
        "mov x30, #0",
        "mov x0, sp",
        "bl {entry}",
        "brk #0",
        entry = sym start_rust,
    );

    // cdecl: the argument on the stack, which is 16-byte aligned at the call.
    #[cfg(target_arch = "x86")]
    global_asm!(
        ".globl _start",
        ".type _start,@function",
        "_start:",
        "xor ebp, ebp",
        "mov eax, esp",
        "and esp, -16",
        "sub esp, 12",
        "push eax",
        "call {entry}",
        "ud2",
        entry = sym start_rust,
    );

    // s390x ELF ABI: the caller provides a 160-byte register save area
    // below the stack pointer, whose first word (the back chain) ends the
    // chain when zero.
    #[cfg(target_arch = "s390x")]
    global_asm!(
        ".globl _start",
        ".type _start,@function",
        "_start:",
        "lgr %r2, %r15",
        "aghi %r15, -160",
        "lghi %r0, 0",
        "stg %r0, 0(%r15)",
        "brasl %r14, {entry}",
        ".word 0",
        entry = sym start_rust,
    );

    // The compiler calls these for copies and compares; without a C
    // library something must define them (compiler_builtins only does with
    // `-Zbuild-std-features=compiler-builtins-mem`). Byte loops, smallest
    // code; volatile so LLVM cannot turn a loop back into a call to itself.

    #[no_mangle]
    unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        for i in 0..n {
            dest.add(i).write_volatile(src.add(i).read_volatile());
        }
        dest
    }

    #[no_mangle]
    unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        if (dest as usize) <= (src as usize) {
            return memcpy(dest, src, n);
        }
        for i in (0..n).rev() {
            dest.add(i).write_volatile(src.add(i).read_volatile());
        }
        dest
    }

    #[no_mangle]
    unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
        for i in 0..n {
            dest.add(i).write_volatile(c as u8);
        }
        dest
    }

    #[no_mangle]
    unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        for i in 0..n {
            let (x, y) = (a.add(i).read_volatile(), b.add(i).read_volatile());
            if x != y {
                return i32::from(x) - i32::from(y);
            }
        }
        0
    }

    // core's `CStr::from_ptr` calls it where not inlined (i686).
    #[no_mangle]
    unsafe extern "C" fn strlen(s: *const u8) -> usize {
        let mut n = 0;
        while s.add(n).read_volatile() != 0 {
            n += 1;
        }
        n
    }

    #[no_mangle]
    unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        memcmp(a, b, n)
    }

    // ARM EHABI unwind tables name these personality routines (normally
    // libgcc's). With `panic = "abort"` nothing ever unwinds, so they are
    // never called.
    #[cfg(target_arch = "arm")]
    #[no_mangle]
    extern "C" fn __aeabi_unwind_cpp_pr0() -> ! {
        exit(134)
    }

    #[cfg(target_arch = "arm")]
    #[no_mangle]
    extern "C" fn __aeabi_unwind_cpp_pr1() -> ! {
        exit(134)
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        super::write_out(b"firmware: panic\n");
        exit(101)
    }
}
