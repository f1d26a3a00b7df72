"""Code generation for the Rockchip NPU (register command lists, `.rknn` files).

Empty for now: the backends arrive with the `rknpu` dialect."""
