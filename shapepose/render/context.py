"""Headless OpenGL for every renderer: the EGL context and the framebuffers it draws into."""

from __future__ import annotations

import moderngl

EGL_HELP = (
    "could not create a headless OpenGL 3.3 context through EGL ({err}). Install an EGL driver, "
    "e.g. on Debian/Ubuntu: apt-get install libegl1 libegl-mesa0 libgl1 (Mesa llvmpipe, no GPU "
    "needed), or the EGL libraries of your GPU driver."
)


def create_context() -> moderngl.Context:
    """A standalone, window-less OpenGL 3.3 context, or one RuntimeError saying what to install."""
    try:
        return moderngl.create_standalone_context(backend="egl", require=330)
    except Exception as err:  # moderngl/glcontext raise bare Exceptions with driver text
        raise RuntimeError(EGL_HELP.format(err=err)) from err


def multisample_framebuffers(ctx: moderngl.Context, size: tuple[int, int],
                             samples: int) -> tuple[moderngl.Framebuffer, moderngl.Framebuffer]:
    """(multisampled colour + depth, single-sample colour) framebuffers of `size` (width, height).

    Multisampled buffers cannot be read directly: a frame drawn into the first is resolved into
    the second with `ctx.copy_framebuffer` and read from there. `samples` is capped by the
    driver (llvmpipe: 4); 0 turns multisampling off.
    """
    samples = min(samples, ctx.max_samples)
    multisampled = ctx.framebuffer(
        color_attachments=[ctx.renderbuffer(size, 4, samples=samples)],
        depth_attachment=ctx.depth_renderbuffer(size, samples=samples),
    )
    resolved = ctx.framebuffer(color_attachments=[ctx.renderbuffer(size, 4)])
    return multisampled, resolved


def release_framebuffer(fbo: moderngl.Framebuffer) -> None:
    """Release a framebuffer and its attachments (moderngl leaves those to the caller)."""
    for attachment in (*fbo.color_attachments, fbo.depth_attachment):
        if attachment is not None:
            attachment.release()
    fbo.release()
