"""Serial device drivers: shipping scales and barcode scanners, addressed by URL.

``prescreen.drivers.registry.open_scale(url, protocol=...)`` and ``open_scanner(url)`` return
readers that run the real wire protocol over pyserial on a path (``/dev/ttyUSB0``), a pyserial URL
(``loop://``, ``socket://``) or a built-in simulator on a pty (``sim://mt-sics``,
``sim://scanner``). Protocol modules live in ``scales/`` and ``scanners/``; nothing is imported
here, so ``import prescreen.drivers`` loads no protocol, simulator or pyserial until a device is
opened.
"""
