// RUN: rkc-opt %s --split-input-file -p nn-to-rknpu | filecheck %s
// RUN: rkc-opt %s --split-input-file -p 'rknpu-legalize{target=rk3588},nn-to-rknpu,rknpu-layout{target=rk3588}' | filecheck %s --check-prefix=RK3588
// RUN: rkc-opt %s --split-input-file -p 'rknpu-legalize{target=rk3568},nn-to-rknpu,rknpu-layout{target=rk3568}' | filecheck %s --check-prefix=RK3568

!q = !quant.uniform<i8:f32, 0.05:-3>
func.func @main(%x: tensor<1x24x2x3x!q>) -> (tensor<1x8x2x3x!q>, tensor<1x8x2x3x!q>, tensor<1x24x6x1x!q>, tensor<1x16x2x3x!q>) {
  %r = nn.relu %x {rkc.name = "relu"} : (tensor<1x24x2x3x!q>) -> tensor<1x24x2x3x!q>
  %hi = nn.slice %r {rkc.name = "hi", starts = array<i64: 0, 16, 0, 0>, ends = array<i64: 1, 24, 2, 3>, steps = array<i64: 1, 1, 1, 1>} : (tensor<1x24x2x3x!q>) -> tensor<1x8x2x3x!q>
  %mid = nn.slice %r {rkc.name = "mid", starts = array<i64: 0, 8, 0, 0>, ends = array<i64: 1, 16, 2, 3>, steps = array<i64: 1, 1, 1, 1>} : (tensor<1x24x2x3x!q>) -> tensor<1x8x2x3x!q>
  %a, %b = nn.split %r {rkc.name = "split", axis = 1 : i64, sizes = array<i64: 16, 8>} : (tensor<1x24x2x3x!q>) -> (tensor<1x16x2x3x!q>, tensor<1x8x2x3x!q>)
  %sum = nn.add %hi, %b {rkc.name = "sum"} : (tensor<1x8x2x3x!q>, tensor<1x8x2x3x!q>) -> tensor<1x8x2x3x!q>
  %flat = nn.reshape %r {rkc.name = "flat", shape = array<i64: 1, 24, 1, 6>} : (tensor<1x24x2x3x!q>) -> tensor<1x24x1x6x!q>
  %col = nn.transpose %flat {rkc.name = "col", perm = array<i64: 0, 1, 3, 2>} : (tensor<1x24x1x6x!q>) -> tensor<1x24x6x1x!q>
  func.return %sum, %mid, %col, %a : tensor<1x8x2x3x!q>, tensor<1x8x2x3x!q>, tensor<1x24x6x1x!q>, tensor<1x16x2x3x!q>
}

// Without a target every view is an rknpu.view: a channel window (offset) read with
// the result's shape; the transpose of the reshape is one view of the relu's result.
// CHECK:      %hi = rknpu.view %r {rkc.name = "hi", offset = 16 : i64, shape = array<i64: 1, 8, 2, 3>}
// CHECK-NEXT: %mid = rknpu.view %r {rkc.name = "mid", offset = 8 : i64, shape = array<i64: 1, 8, 2, 3>}
// CHECK-NEXT: %a = rknpu.view %r {rkc.name = "split:0", offset = 0 : i64, shape = array<i64: 1, 16, 2, 3>}
// CHECK-NEXT: %b = rknpu.view %r {rkc.name = "split:1", offset = 16 : i64, shape = array<i64: 1, 8, 2, 3>}
// CHECK-NEXT: %sum = rknpu.ew %hi, %b {rkc.name = "sum", kind = "add"}
// CHECK-NEXT: %col = rknpu.view %r {rkc.name = "col", offset = 0 : i64, shape = array<i64: 1, 24, 6, 1>}
// CHECK-NOT:  nn.

// RK3588 (C2 = 16): channel 8 is inside a block, so `mid` stays on the host. The views the
// add reads take the relu's native result at surface offsets (channel 16 = surface 1);
// the views only the host reads are views of the relu's one conversion back.
// RK3588:      %[[R:.*]] = rknpu.ew %{{.*}} {rkc.name = "relu", kind = "relu"} {{.*}} -> tensor<1x2x2x3x16x
// RK3588-NEXT: %r = rknpu.from_native %[[R]] {channels = 24 : i64}
// RK3588-NEXT: %[[HI:.*]] = rknpu.view %[[R]] {rkc.name = "hi", offset = 16 : i64, shape = array<i64: 1, 8, 2, 3>} : (tensor<1x2x2x3x16x!quant.uniform<i8:f32, 0.05:-3>>) -> tensor<1x1x2x3x16x
// RK3588:      "rknpu.cpu"(%r) <{reason = "slice at channel offsets of [8] not multiples of C2 = 16 on RK3588 changes the NC1HWC2 layout"}>
// RK3588:      %a = rknpu.view %r {rkc.name = "split:0", offset = 0 : i64, {{.*}} -> tensor<1x16x2x3x
// RK3588-NEXT: %[[B:.*]] = rknpu.view %[[R]] {rkc.name = "split:1", offset = 16 : i64, {{.*}} -> tensor<1x1x2x3x16x
// RK3588-NEXT: rknpu.ew %[[HI]], %[[B]] {rkc.name = "sum", kind = "add"} : (tensor<1x1x2x3x16x{{.*}}, tensor<1x1x2x3x16x{{.*}}) -> tensor<1x1x2x3x16x
// RK3588-NEXT: %sum = rknpu.from_native
// RK3588-NEXT: %col = rknpu.view %r {rkc.name = "col", offset = 0 : i64, shape = array<i64: 1, 24, 6, 1>} {{.*}} -> tensor<1x24x6x1x
// RK3588-NOT:  rknpu.to_native

// RK3568 (C2 = 8): every slice starts at a block boundary, none goes to the host.
// RK3568:      %r = rknpu.from_native
// RK3568:      %mid = rknpu.view %r {rkc.name = "mid", offset = 8 : i64
// RK3568-NOT:  rknpu.cpu

// -----

!q = !quant.uniform<i8:f32, 0.05:-3>

// A single view only the host reads keeps the native bytes: its own conversion reads
// only its channels.
// CHECK-LABEL:  func.func @one_view
// RK3588-LABEL: func.func @one_view
// RK3588:       %[[R:.*]] = rknpu.ew
// RK3588-NEXT:  %[[V:.*]] = rknpu.view %[[R]] {offset = 16 : i64, shape = array<i64: 1, 8, 2, 3>} {{.*}} -> tensor<1x1x2x3x16x
// RK3588-NEXT:  rknpu.from_native %[[V]] {channels = 8 : i64}
func.func @one_view(%x: tensor<1x24x2x3x!q>) -> tensor<1x8x2x3x!q> {
  %r = nn.relu %x : (tensor<1x24x2x3x!q>) -> tensor<1x24x2x3x!q>
  %hi = nn.slice %r {starts = array<i64: 0, 16, 0, 0>, ends = array<i64: 1, 24, 2, 3>, steps = array<i64: 1, 1, 1, 1>} : (tensor<1x24x2x3x!q>) -> tensor<1x8x2x3x!q>
  func.return %hi : tensor<1x8x2x3x!q>
}

// -----

!q = !quant.uniform<i8:f32, 0.05:-3>

// An elementwise op between host values with a one-value constant runs on the host
// (no conversion in and out: NPU tasks read NC1HWC2 only); with a per-channel constant
// it is an NPU task on NC1HWC2.
// RK3588-LABEL: func.func @flat
// RK3568-LABEL: func.func @flat
// RK3588-NEXT:  %s = "rknpu.cpu"(%x) <{reason = "rknpu.ew stays in NCHW
// RK3588-NEXT:  ^bb0
// RK3588-NEXT:  %[[K:.*]] = nn.constant dense<2> : tensor<1x24x1x1xi8>
// RK3588-NEXT:  rknpu.ew %{{.*}}, %[[K]] {kind = "add"} : (tensor<1x24x2x3x{{.*}}, tensor<1x24x1x1x{{.*}}) -> tensor<1x24x2x3x
// RK3588:       %[[X:.*]] = rknpu.to_native %x {c2 = 16 : i64}
// RK3588-NEXT:  %[[C:.*]] = nn.constant dense<{{.*}}> : tensor<1x2x1x1x16xi8>
// RK3588-NEXT:  %[[M:.*]] = rknpu.ew %[[X]], %[[C]] {kind = "mul"} {{.*}} -> tensor<1x2x2x3x16x
// RK3588-NEXT:  %m = rknpu.from_native %[[M]] {channels = 24 : i64}
func.func @flat(%x: tensor<1x24x2x3x!q>) -> (tensor<1x24x2x3x!q>, tensor<1x24x2x3x!q>) {
  %k = nn.constant dense<2> : tensor<i8> as tensor<!q>
  %s = nn.add %x, %k : (tensor<1x24x2x3x!q>, tensor<!q>) -> tensor<1x24x2x3x!q>
  %c = nn.constant dense<[[[[1]], [[2]], [[3]], [[4]], [[5]], [[6]], [[7]], [[8]], [[9]], [[10]], [[11]], [[12]], [[13]], [[14]], [[15]], [[16]], [[17]], [[18]], [[19]], [[20]], [[21]], [[22]], [[23]], [[24]]]]> : tensor<1x24x1x1xi8> as tensor<1x24x1x1x!q>
  %m = nn.mul %x, %c : (tensor<1x24x2x3x!q>, tensor<1x24x1x1x!q>) -> tensor<1x24x2x3x!q>
  func.return %s, %m : tensor<1x24x2x3x!q>, tensor<1x24x2x3x!q>
}
