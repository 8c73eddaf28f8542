/* lwIP 2.1.3 configuration for Lantern (lwIP's option reference: src/include/lwip/opt.h).
 *
 * One owner: lwIP runs on the bootstrap processor only, from lantern::net::poll() (net/stack/).
 * No other core and no interrupt handler ever calls into lwIP, so the raw API needs no locks
 * (NO_SYS=1, no tcpip thread). SYS_LIGHTWEIGHT_PROT stays on as a cheap guard (CLI/restore
 * RFLAGS around pool updates, net/lwip/sys_arch.cpp) should that rule ever be bent.
 *
 * Included from C (the lwIP sources, built with the freestanding flags in net/lwip/CMakeLists.txt)
 * and from C++ (net/stack/). */
#ifndef LANTERN_NET_LWIP_LWIPOPTS_H
#define LANTERN_NET_LWIP_LWIPOPTS_H

/* ---- Operating-system model -------------------------------------------------------------- */
#define NO_SYS 1                /* raw API, no threads, no semaphores */
#define SYS_LIGHTWEIGHT_PROT 1  /* sys_arch_protect(): save RFLAGS + CLI */
#define LWIP_TIMERS 1           /* sys_check_timeouts() from poll(), sys_now() from the TSC */
#define LWIP_SOCKET 0
#define LWIP_NETCONN 0
#define LWIP_NETIF_API 0
#define LWIP_ALTCP 0

/* ---- Protocols ------------------------------------------------------------------------------ */
#define LWIP_IPV4 1
#define LWIP_IPV6 0
#define LWIP_ARP 1
#define LWIP_ETHERNET 1
#define LWIP_ICMP 1             /* echo replies (icmp.c) */
#define LWIP_RAW 0
#define LWIP_UDP 1              /* DHCP needs UDP */
#define LWIP_TCP 1
#define LWIP_DHCP 1
#define DHCP_DOES_ARP_CHECK 0   /* saves ~0.5 s of emulated time per lease; slirp never conflicts */
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define IP_FORWARD 0
#define IP_REASSEMBLY 1
#define IP_FRAG 1
#define IP_REASS_MAX_PBUFS 32
#define MEMP_NUM_REASSDATA 4
#define ARP_TABLE_SIZE 16
#define ARP_QUEUEING 1
#define ETH_PAD_SIZE 0

/* ---- netif ---------------------------------------------------------------------------------- */
#define LWIP_NETIF_STATUS_CALLBACK 1  /* log when DHCP binds an address */
#define LWIP_NETIF_LINK_CALLBACK 1
#define LWIP_NETIF_HOSTNAME 1         /* DHCP option 12: "lantern" */
#define LWIP_NETIF_TX_SINGLE_PBUF 1   /* TCP builds one pbuf per segment: linkoutput copies once */
#define LWIP_SINGLE_NETIF 0

/* ---- Memory --------------------------------------------------------------------------------- */
/* lwIP's own heap (mem.c) in a static array: no kmalloc, nothing shared with other cores. */
#define MEM_LIBC_MALLOC 0
#define MEMP_MEM_MALLOC 0
#define MEM_ALIGNMENT 8
#define MEM_SIZE (512 * 1024)           /* PBUF_RAM: TCP segments queued for sending (copied) */
#define MEMP_NUM_PBUF 64                /* PBUF_REF/ROM headers */
#define MEMP_NUM_UDP_PCB 4              /* DHCP client + spare */
#define MEMP_NUM_TCP_PCB 40             /* >= 16 concurrent console connections + TIME_WAIT */
#define MEMP_NUM_TCP_PCB_LISTEN 4
#define MEMP_NUM_SYS_TIMEOUT (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 4)
#define PBUF_POOL_SIZE 256              /* receive buffers: one 1514-byte frame each */
/* PBUF_POOL_BUFSIZE: default, LWIP_MEM_ALIGN_SIZE(TCP_MSS + 40 + PBUF_LINK_HLEN) = 1520 */

/* ---- TCP ------------------------------------------------------------------------------------ */
#define TCP_MSS 1460                    /* 1500-byte Ethernet MTU - 20 (IP) - 20 (TCP) */
/* Receive window: 32 segments (46720 bytes) keeps bulk RX flowing without window scaling
 * (RFC 7323) while staying below the pool: the pool holds 256 full frames. */
#define TCP_WND (32 * TCP_MSS)
#define TCP_SND_BUF (16 * TCP_MSS)
#define TCP_SND_QUEUELEN ((4 * (TCP_SND_BUF) + (TCP_MSS - 1)) / (TCP_MSS))
/* Pitfall (dependencies.md): MEMP_NUM_TCP_SEG must be >= TCP_SND_QUEUELEN; a few connections
 * sending at once and out-of-sequence segments share it. */
#define MEMP_NUM_TCP_SEG 256
#define TCP_QUEUE_OOSEQ 1
#define TCP_OOSEQ_MAX_PBUFS 64
#define TCP_LISTEN_BACKLOG 1
#define TCP_DEFAULT_LISTEN_BACKLOG 32
#define LWIP_TCP_KEEPALIVE 0
#define LWIP_WND_SCALE 0
#define LWIP_TCP_TIMESTAMPS 0
#define TCP_OVERSIZE TCP_MSS
#define LWIP_CALLBACK_API 1

/* ---- Checksums: neither driver offloads them (net/e1000, net/virtio), so lwIP does all ---- */
#define CHECKSUM_GEN_IP 1
#define CHECKSUM_GEN_UDP 1
#define CHECKSUM_GEN_TCP 1
#define CHECKSUM_GEN_ICMP 1
#define CHECKSUM_CHECK_IP 1
#define CHECKSUM_CHECK_UDP 1
#define CHECKSUM_CHECK_TCP 1
#define CHECKSUM_CHECK_ICMP 1
#define LWIP_CHECKSUM_ON_COPY 0
#define LWIP_CHKSUM_ALGORITHM 3  /* 32-bit accumulation (inet_chksum.c) */

/* ---- Statistics: pool levels for the console (lwip_stats.memp[i], lwip_stats.mem) --------- */
#define LWIP_STATS 1
#define LWIP_STATS_DISPLAY 0     /* no printf-based dump */
#define LINK_STATS 1
#define ETHARP_STATS 1
#define IP_STATS 1
#define IPFRAG_STATS 1
#define ICMP_STATS 1
#define UDP_STATS 1
#define TCP_STATS 1
#define MEM_STATS 1
#define MEMP_STATS 1
#define SYS_STATS 0

/* ---- Debugging ------------------------------------------------------------------------------ */
/* LWIP_DEBUG stays undefined: LWIP_DEBUGF compiles to nothing. LWIP_ASSERT stays on and ends in
 * lantern::panic (arch/cc.h): an lwIP invariant broken is a kernel bug. */
#define LWIP_DBG_TYPES_ON LWIP_DBG_OFF

#endif /* LANTERN_NET_LWIP_LWIPOPTS_H */
